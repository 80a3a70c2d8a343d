// Co-parents as the window shows them: what a role may do (the cloud
// enforces it; the window only hides what would be refused) and the words
// for members and invitations.

import type { FamilyMember, FamilyRole, InvitationPreview } from "./types";

/** Owners pair, rename, revoke, invite and remove; guardians see. */
export function canManage(role: FamilyRole | null | undefined): boolean {
  return role === "owner";
}

export function roleLabel(role: FamilyRole): string {
  return role === "owner" ? "Owner" : "Guardian";
}

/** What a role may do, to follow "can": for the invitation form and question. */
export function roleDescription(role: FamilyRole): string {
  return role === "owner"
    ? "see what a guardian sees, and also pair, rename and revoke watches, invite and remove parents"
    : "see the watches, the live map, history and alerts";
}

/** "Sam (you) · Guardian", "Alex · Owner · founded the family". */
export function memberLine(m: FamilyMember): string {
  const parts = [m.you ? `${m.name} (you)` : m.name, roleLabel(m.role)];
  if (m.founder) parts.push("founded the family");
  return parts.join(" · ");
}

/** The question asked before joining. */
export function invitationQuestion(p: InvitationPreview): string {
  return `Join the family founded by ${p.family_name}, as ${p.role === "owner" ? "an owner" : "a guardian"}? ${p.invited_by} invited you; you could ${roleDescription(p.role)}.`;
}

/** True if `text` could be an invitation: a `waymark://invite/` link or 26
 * code characters (spaces and dashes ignored). The core checks it exactly. */
export function looksLikeInvitation(text: string): boolean {
  const code = text.trim().replace(/^waymark:\/\/invite\//, "").replace(/[\s-]/g, "");
  return /^[0-9A-Za-z]{26}$/.test(code);
}
