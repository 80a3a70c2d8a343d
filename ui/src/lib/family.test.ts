import { describe, expect, it } from "vitest";
import { recoveryKeyGroups } from "./family";

describe("recoveryKeyGroups", () => {
  it("splits the key into the groups a parent copies down", () => {
    expect(recoveryKeyGroups("0ABCD-EFGHJ-KMNPQ-RSTVW-XYZ01-2")).toEqual(["0ABCD", "EFGHJ", "KMNPQ", "RSTVW", "XYZ01", "2"]);
  });
  it("shows anything unexpected whole", () => {
    expect(recoveryKeyGroups("not a key")).toEqual(["not a key"]);
    expect(recoveryKeyGroups("abcde-fghjk")).toEqual(["abcde-fghjk"]);
  });
});
