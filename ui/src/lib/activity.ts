// The account's activity log, said for a parent.

const TITLES: Record<string, string> = {
  "account.created": "Account created",
  "session.signed_in": "Signed in",
  "session.signed_out": "Signed out",
  "session.ended": "A computer was signed out",
  "session.ended_others": "All other computers were signed out",
  "passkey.added": "Passkey added",
  "passkey.renamed": "Passkey renamed",
  "passkey.removed": "Passkey removed",
  "watch.paired": "Watch paired",
  "watch.renamed": "Watch renamed",
  "watch.revoked": "Watch revoked",
  "settings.retention": "History retention changed",
  "family.founded": "Family keys created",
  "family.computers_changed": "Family computers changed",
  "family.computer_approved": "A computer was approved",
  "family.zones_saved": "Safe zones changed",
  "invitation.made": "Invitation made",
  "invitation.cancelled": "Invitation cancelled",
  "invitation.expired": "Invitation expired",
  "member.joined": "A parent joined the family",
  "member.role_changed": "A parent's role changed",
  "member.removed": "A parent left the family",
};

/** A heading for an entry; unknown kinds (a newer cloud) still read sensibly. */
export function activityTitle(kind: string): string {
  return TITLES[kind] ?? kind.replace(/[._]/g, " ").replace(/^./, (c) => c.toUpperCase());
}

/** "by Kitchen laptop", "by Sam on Kitchen laptop" (a family event, which
 * every member sees), "by a computer since signed out", or "" when no
 * computer did it. */
export function activityActor(sessionId: string | null, sessionName: string | null, memberName: string | null = null): string {
  if (sessionName && memberName) return `by ${memberName} on ${sessionName}`;
  if (sessionName) return `by ${sessionName}`;
  if (sessionId) return "by a computer since signed out";
  return "";
}
