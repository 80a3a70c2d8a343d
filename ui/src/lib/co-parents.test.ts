import { describe, expect, it } from "vitest";
import { canManage, invitationQuestion, looksLikeInvitation, memberLine, roleLabel } from "./co-parents";

describe("co-parents", () => {
  it("lets only an owner manage", () => {
    expect(canManage("owner")).toBe(true);
    expect(canManage("guardian")).toBe(false);
    expect(canManage(null)).toBe(false);
    expect(roleLabel("guardian")).toBe("Guardian");
  });
  it("describes members", () => {
    const m = { account_id: "a", name: "Alex", role: "owner" as const, joined_at: 0, founder: true, you: false };
    expect(memberLine(m)).toBe("Alex · Owner · founded the family");
    expect(memberLine({ ...m, name: "Sam", role: "guardian", founder: false, you: true })).toBe("Sam (you) · Guardian");
  });
  it("asks before joining", () => {
    expect(invitationQuestion({ family_name: "Alex", invited_by: "Alex", role: "guardian", expires_at: 0 })).toBe(
      "Join the family founded by Alex, as a guardian? Alex invited you; you could see the watches, the live map, history and alerts.",
    );
  });
  it("recognises a code or a link", () => {
    expect(looksLikeInvitation("0ABCD-EFGHJ-KMNPQ-RSTVW-XYZ01-2")).toBe(true);
    expect(looksLikeInvitation("waymark://invite/0ABCDEFGHJKMNPQRSTVWXYZ012")).toBe(true);
    expect(looksLikeInvitation("hello")).toBe(false);
  });
});
