import { describe, expect, it } from "vitest";
import { applyFix, isUnknown, scrubIndex, trailLength } from "./watches";
import type { Fix, WatchInfo } from "./types";

const fix = (t: number, lat = 51.5, lon = -0.12): Fix => ({ t, lat, lon, acc: 8, bat: 70 });
const watch = (id: string, latest: Fix | null, state: WatchInfo["state"] = "quiet"): WatchInfo => ({
  id, name: id, model: "m", paired_at: 0, battery: 90, last_seen: latest?.t ?? null, latest, state, hardware_key: false, report_problem: null, key_epoch: 0, behind_key: false,
});

describe("applyFix", () => {
  it("moves only the named watch and marks it reporting", () => {
    const list = [watch("a", fix(1)), watch("b", fix(1))];
    const next = applyFix(list, "a", fix(2, 52));
    expect(next[0]?.latest?.lat).toBe(52);
    expect(next[0]?.battery).toBe(70);
    expect(next[0]?.state).toBe("reporting");
    expect(next[1]).toBe(list[1]);
  });
  it("ignores a fix older than the one shown (late delivery from the queue)", () => {
    const list = [watch("a", fix(5))];
    expect(applyFix(list, "a", fix(4))[0]?.latest?.t).toBe(5);
  });
  it("never brings a revoked watch back", () => {
    expect(applyFix([watch("a", fix(1), "revoked")], "a", fix(2))[0]?.state).toBe("revoked");
  });
  it("spots a watch the list does not know yet", () => {
    expect(isUnknown([watch("a", null)], "b")).toBe(true);
    expect(isUnknown([watch("a", null)], "a")).toBe(false);
  });
});

describe("trails", () => {
  it("maps the scrubber onto the trail's ends", () => {
    expect(scrubIndex(0, 500)).toBe(-1);
    expect(scrubIndex(11, 0)).toBe(0);
    expect(scrubIndex(11, 1000)).toBe(10);
    expect(scrubIndex(11, 500)).toBe(5);
    expect(scrubIndex(11, 5000)).toBe(10);
  });
  it("measures the distance walked", () => {
    // 0.01 degrees of latitude is about 1112 m.
    const d = trailLength([fix(1, 51.5), fix(2, 51.51), fix(3, 51.52)]);
    expect(d).toBeGreaterThan(2200);
    expect(d).toBeLessThan(2250);
  });
});
