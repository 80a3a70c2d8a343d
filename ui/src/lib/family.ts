// The family's keys as the window shows them.

/** The recovery key's groups as the core sends them (`ABCDE-FGHJK-…`), for
 * one `<code>` each; anything else is shown whole rather than guessed at. */
export function recoveryKeyGroups(key: string): string[] {
  const groups = key.split("-");
  return groups.every((g) => /^[0-9A-Z]{1,5}$/.test(g)) ? groups : [key];
}
