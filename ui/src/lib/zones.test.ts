import { describe, expect, it } from "vitest";
import { describeSchedule, eventSentence, minutesOf, newZoneId, scheduleFrom, timeOf, watchZoneState, withZone } from "./zones";
import type { WatchZones, Zone } from "./types";

const form = { always: false, days: 0b0011111, from: "08:00", until: "15:30", arriveBy: "08:30" };

describe("zones", () => {
  it("makes 16-byte ids in base64url", () => {
    const id = newZoneId();
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(newZoneId()).not.toBe(id);
  });

  it("reads and writes times of day", () => {
    expect(minutesOf("08:30")).toBe(510);
    expect(minutesOf("24:30")).toBeNull();
    expect(minutesOf("8:30")).toBeNull();
    expect(timeOf(510)).toBe("08:30");
  });

  it("builds a school-day schedule and refuses one that cannot happen", () => {
    expect(scheduleFrom(form)).toEqual({ kind: "weekly", days: 31, from_min: 480, until_min: 930, arrive_by_min: 510 });
    expect(scheduleFrom({ ...form, always: true })).toEqual({ kind: "always" });
    expect(scheduleFrom({ ...form, days: 0 })).toBe("Choose at least one day.");
    expect(scheduleFrom({ ...form, until: "07:00" })).toBe("The end must be after the start.");
    expect(scheduleFrom({ ...form, arriveBy: "16:00" })).toMatch(/between the start and the end/);
    expect(scheduleFrom({ ...form, arriveBy: "" })).toMatchObject({ arrive_by_min: null });
  });

  it("says what a schedule and an event mean", () => {
    const s = scheduleFrom(form);
    if (typeof s === "string") throw new Error(s);
    expect(describeSchedule(s)).toBe("Mon–Fri 08:00–15:30, arrive by 08:30");
    expect(describeSchedule({ kind: "always" })).toBe("Always");
    expect(eventSentence({ watch: "Mia's watch", zone: "School", kind: "arrived" })).toBe("Mia's watch arrived at School");
    expect(eventSentence({ watch: "Mia's watch", zone: "Home", kind: "left" })).toBe("Mia's watch left Home");
  });

  it("says whether a watch checks the zones shown", () => {
    const w: WatchZones = { watch_id: "w", name: "Mia", in_force: 2, said_at: 0, refused: null, ready: true };
    const at = () => "08:12";
    expect(watchZoneState({ version: 2 }, w, at)).toBe("Checking these zones since 08:12.");
    expect(watchZoneState({ version: 3 }, w, at)).toMatch(/Not confirmed yet/);
    expect(watchZoneState({ version: 3 }, { ...w, ready: false }, at)).toMatch(/Waiting for the watch/);
    expect(watchZoneState({ version: 3 }, { ...w, refused: "The watch refused the zones: x" }, at)).toMatch(/refused/);
  });

  it("adds a zone or replaces the one with its id", () => {
    const z = (id: string, name: string): Zone => ({
      id,
      name,
      shape: { kind: "circle", centre: { lat: 1, lon: 2 }, radius_m: 100 },
      watches: ["w"],
      schedule: { kind: "always" },
    });
    expect(withZone([z("a", "Home")], z("b", "School")).map((x) => x.name)).toEqual(["Home", "School"]);
    expect(withZone([z("a", "Home")], z("a", "House")).map((x) => x.name)).toEqual(["House"]);
  });
});
