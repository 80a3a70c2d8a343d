import { describe, expect, it } from "vitest";
import { batteryLabel, dayRange, distance, isLowBattery, isoDay, sortWatches, stateLabel, timeAgo } from "./format";
import type { WatchInfo } from "./types";

describe("timeAgo", () => {
  const now = 1_700_000_000_000;
  it("says how long ago, in words a parent reads at a glance", () => {
    expect(timeAgo(null, now)).toBe("never");
    expect(timeAgo(now - 10_000, now)).toBe("just now");
    expect(timeAgo(now - 2 * 60_000, now)).toBe("2 min ago");
    expect(timeAgo(now - 59 * 60_000, now)).toBe("59 min ago");
    expect(timeAgo(now - 3 * 3_600_000, now)).toBe("3 h ago");
    expect(timeAgo(now - 26 * 3_600_000, now)).toBe("yesterday");
    expect(timeAgo(now - 4 * 86_400_000, now)).toBe("4 days ago");
  });
  it("treats a watch clock slightly ahead as just now", () => {
    expect(timeAgo(now + 5_000, now)).toBe("just now");
  });
});

describe("labels", () => {
  it("writes battery, distance and state", () => {
    expect(batteryLabel(null)).toBe("battery unknown");
    expect(batteryLabel(87)).toBe("87% battery");
    expect(isLowBattery(15)).toBe(true);
    expect(isLowBattery(16)).toBe(false);
    expect(isLowBattery(null)).toBe(false);
    expect(distance(8.4)).toBe("8 m");
    expect(distance(1234)).toBe("1.2 km");
    expect(stateLabel("quiet")).toBe("Quiet");
  });
});

describe("days", () => {
  it("turns a date input into local midnight to midnight", () => {
    const r = dayRange("2026-03-29");
    expect(r).not.toBeNull();
    const [from, to] = r as [number, number];
    expect(new Date(from).getHours()).toBe(0);
    expect(new Date(to).getDate()).toBe(30);
    expect(isoDay(from)).toBe("2026-03-29");
  });
  it("refuses what is not a date", () => {
    expect(dayRange("")).toBeNull();
    expect(dayRange("29/03/2026")).toBeNull();
  });
});

describe("sortWatches", () => {
  const w = (name: string, state: WatchInfo["state"]): WatchInfo => ({
    id: name, name, model: "m", paired_at: 0, battery: null, last_seen: null, latest: null, state, hardware_key: false, report_problem: null, key_epoch: 0, behind_key: false,
  });
  it("puts reporting watches first, revoked last, then by name", () => {
    const sorted = sortWatches([w("Zoe", "revoked"), w("Ben", "quiet"), w("Maya", "reporting"), w("Ada", "quiet")]);
    expect(sorted.map((x) => x.name)).toEqual(["Maya", "Ada", "Ben", "Zoe"]);
  });
});
