// How times, batteries and states are written for a parent.

import type { WatchInfo, WatchState } from "./types";

/** "just now", "2 min ago", "3 h ago", "yesterday", "4 days ago", or "never". */
export function timeAgo(then: number | null, now: number): string {
  if (then === null) return "never";
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 45) return "just now";
  const min = Math.round(s / 60);
  if (min < 60) return `${min} min ago`;
  const h = Math.round(min / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.round(h / 24);
  return d === 1 ? "yesterday" : `${d} days ago`;
}

export function batteryLabel(battery: number | null): string {
  if (battery === null) return "battery unknown";
  return `${Math.round(battery)}% battery`;
}

export function isLowBattery(battery: number | null): boolean {
  return battery !== null && battery <= 15;
}

const STATE_LABELS: Record<WatchState, string> = {
  reporting: "Reporting",
  quiet: "Quiet",
  revoked: "Revoked",
};

export function stateLabel(state: WatchState): string {
  return STATE_LABELS[state];
}

/** Metres as a person reads them: "8 m", "1.2 km". */
export function distance(metres: number): string {
  if (metres < 1000) return `${Math.round(metres)} m`;
  return `${(metres / 1000).toFixed(1)} km`;
}

/** A clock time in the computer's own zone, e.g. "14:05". */
export function clock(t: number): string {
  return new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** Local midnight to the next local midnight for a `YYYY-MM-DD` date input. */
export function dayRange(day: string): [number, number] | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return null;
  const start = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (Number.isNaN(start.getTime())) return null;
  const end = new Date(start);
  end.setDate(end.getDate() + 1);
  return [start.getTime(), end.getTime()];
}

/** `YYYY-MM-DD` for a time, in the computer's zone (for date inputs). */
export function isoDay(t: number): string {
  const d = new Date(t);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Sorts reporting watches first, then by name. */
export function sortWatches(list: WatchInfo[]): WatchInfo[] {
  const rank: Record<WatchState, number> = { reporting: 0, quiet: 1, revoked: 2 };
  return [...list].sort((a, b) => rank[a.state] - rank[b.state] || a.name.localeCompare(b.name));
}
