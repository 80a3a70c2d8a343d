// The watch list as the UI keeps it: loaded from the cloud, then kept up to
// date by live fixes without another request.

import type { Fix, WatchInfo } from "./types";

/** Applies a live fix: newer fixes move the marker, battery and last-seen. */
export function applyFix(list: WatchInfo[], watchId: string, fix: Fix): WatchInfo[] {
  return list.map((w) => {
    if (w.id !== watchId) return w;
    if (w.latest !== null && w.latest.t >= fix.t) return w;
    return {
      ...w,
      latest: fix,
      battery: fix.bat,
      last_seen: fix.t,
      state: w.state === "revoked" ? "revoked" : "reporting",
    };
  });
}

/** True when a live fix names a watch the list does not know (reload it). */
export function isUnknown(list: WatchInfo[], watchId: string): boolean {
  return !list.some((w) => w.id === watchId);
}

/** Index into a trail for a scrubber position 0..1000. */
export function scrubIndex(length: number, position: number): number {
  if (length === 0) return -1;
  const p = Math.min(1000, Math.max(0, position));
  return Math.round((p / 1000) * (length - 1));
}

/** Total distance along a trail, in metres (haversine). */
export function trailLength(fixes: Fix[]): number {
  let total = 0;
  for (let i = 1; i < fixes.length; i++) {
    const a = fixes[i - 1];
    const b = fixes[i];
    if (a && b) total += metresBetween(a, b);
  }
  return total;
}

function metresBetween(a: Fix, b: Fix): number {
  const r = 6_371_000;
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(h));
}
