import { describe, expect, it } from "vitest";
import { activityActor, activityTitle } from "./activity";

describe("activity", () => {
  it("names what happened", () => {
    expect(activityTitle("watch.revoked")).toBe("Watch revoked");
    expect(activityTitle("session.signed_in")).toBe("Signed in");
    expect(activityTitle("watch.battery_replaced")).toBe("Watch battery replaced");
  });
  it("names which computer did it", () => {
    expect(activityActor("s1", "Kitchen laptop")).toBe("by Kitchen laptop");
    expect(activityActor("s1", null)).toBe("by a computer since signed out");
    expect(activityActor(null, null)).toBe("");
  });
  it("names the parent for the family's events", () => {
    expect(activityActor("s1", "Kitchen laptop", "Sam")).toBe("by Sam on Kitchen laptop");
    expect(activityTitle("member.joined")).toBe("A parent joined the family");
  });
});
