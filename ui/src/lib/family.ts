// The family's keys as the window shows them.

import type { FamilyKeysView } from "./types";

/** What the Account screen says of the computers that hold the family's
 * keys; `alone` when this computer is the only one (losing it would leave
 * only the recovery key). */
export function keyHolders(view: FamilyKeysView | null): { names: string[]; alone: boolean; waiting: boolean } {
  if (view === null) return { names: [], alone: false, waiting: false };
  if (view.status === "waiting_for_approval") return { names: [], alone: false, waiting: true };
  return { names: view.computers, alone: view.computers.length === 1, waiting: false };
}

/** The recovery key's groups as the core sends them (`ABCDE-FGHJK-…`), for
 * one `<code>` each; anything else is shown whole rather than guessed at. */
export function recoveryKeyGroups(key: string): string[] {
  const groups = key.split("-");
  return groups.every((g) => /^[0-9A-Z]{1,5}$/.test(g)) ? groups : [key];
}
