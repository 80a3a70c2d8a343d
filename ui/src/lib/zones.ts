// Safe zones as the Zones screen builds and shows them. The Rust core checks
// every zone again before it seals and saves (and the watch after it opens
// them); these helpers build well-formed zones and say what they mean.

import type { Schedule, WatchZones, Zone, ZoneEntry, ZoneEventKind, ZonesView } from "./types";

/** Monday first, as the days' bits (Monday = bit 0). */
export const DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] as const;
export const SCHOOL_DAYS = 0b0011111;

/** A new zone id: 16 random bytes, base64url without padding. */
export function newZoneId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** "08:30" → 510; null for anything that is not a time of day. */
export function minutesOf(time: string): number | null {
  const m = /^(\d{2}):(\d{2})$/.exec(time);
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (h > 23 || min > 59) return null;
  return h * 60 + min;
}

/** 510 → "08:30" (1440 → "24:00"). */
export function timeOf(minutes: number): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;
}

/** What the schedule form holds. */
export interface ScheduleForm {
  always: boolean;
  days: number;
  from: string;
  until: string;
  /** Empty: no "not arrived by" alert. */
  arriveBy: string;
}

/** The schedule a form describes, or why it cannot happen. */
export function scheduleFrom(form: ScheduleForm): Schedule | string {
  if (form.always) return { kind: "always" };
  const from = minutesOf(form.from);
  const until = form.until === "24:00" ? 1440 : minutesOf(form.until);
  if (form.days === 0) return "Choose at least one day.";
  if (from === null || until === null) return "Give the times as hours and minutes, like 08:00.";
  if (until <= from) return "The end must be after the start.";
  let arriveBy: number | null = null;
  if (form.arriveBy !== "") {
    arriveBy = minutesOf(form.arriveBy);
    if (arriveBy === null || arriveBy < from || arriveBy > until) {
      return "The arrival time must lie between the start and the end.";
    }
  }
  return { kind: "weekly", days: form.days, from_min: from, until_min: until, arrive_by_min: arriveBy };
}

/** The form for a zone's schedule (for editing it). */
export function formOf(schedule: Schedule): ScheduleForm {
  if (schedule.kind === "always") return { always: true, days: SCHOOL_DAYS, from: "08:00", until: "15:30", arriveBy: "" };
  return {
    always: false,
    days: schedule.days,
    from: timeOf(schedule.from_min),
    until: timeOf(schedule.until_min),
    arriveBy: schedule.arrive_by_min === null ? "" : timeOf(schedule.arrive_by_min),
  };
}

/** "Always", or "Mon–Fri 08:00–15:30, arrive by 08:30". */
export function describeSchedule(schedule: Schedule): string {
  if (schedule.kind === "always") return "Always";
  const days =
    schedule.days === SCHOOL_DAYS
      ? "Mon–Fri"
      : schedule.days === 0b1111111
        ? "Every day"
        : DAY_NAMES.filter((_, i) => schedule.days & (1 << i)).join(", ");
  const window = `${timeOf(schedule.from_min)}–${timeOf(schedule.until_min)}`;
  const arrive = schedule.arrive_by_min === null ? "" : `, arrive by ${timeOf(schedule.arrive_by_min)}`;
  return `${days} ${window}${arrive}`;
}

/** "Mia's watch arrived at School". */
export function eventSentence(e: Pick<ZoneEntry, "watch" | "zone" | "kind">): string {
  const phrases: Record<ZoneEventKind, string> = {
    arrived: `arrived at ${e.zone}`,
    left: `left ${e.zone}`,
    not_arrived_by: `had not arrived at ${e.zone} by its scheduled time`,
  };
  return `${e.watch} ${phrases[e.kind]}`;
}

/** Whether a watch checks its fixes against the zones shown, in words. */
export function watchZoneState(view: Pick<ZonesView, "version">, w: WatchZones, at: (t: number) => string): string {
  if (w.refused) return w.refused;
  if (!w.ready) return "Waiting for the watch to connect: it has not yet said where its zones can be sent.";
  if (view.version === 0) return "No zones saved yet.";
  if (w.in_force >= view.version) {
    return `Checking these zones since ${w.said_at === null ? "its last contact" : at(w.said_at)}.`;
  }
  return "Not confirmed yet: the watch takes the new zones at its next contact.";
}

/** The zones with `zone` added, or replacing the one with its id. */
export function withZone(zones: Zone[], zone: Zone): Zone[] {
  return zones.some((z) => z.id === zone.id) ? zones.map((z) => (z.id === zone.id ? zone : z)) : [...zones, zone];
}
