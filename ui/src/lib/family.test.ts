import { describe, expect, it } from "vitest";
import { keyHolders, recoveryKeyGroups } from "./family";

describe("keyHolders", () => {
  it("warns while only one computer holds the keys", () => {
    expect(keyHolders({ status: "trusted", computers: ["Desk"], recovery_key: null })).toEqual({
      names: ["Desk"],
      alone: true,
      waiting: false,
    });
    expect(keyHolders({ status: "trusted", computers: ["Desk", "Laptop"], recovery_key: null }).alone).toBe(false);
  });
  it("lists nobody on a computer that waits for approval", () => {
    expect(keyHolders({ status: "waiting_for_approval" })).toEqual({ names: [], alone: false, waiting: true });
    expect(keyHolders(null).names).toEqual([]);
  });
});

describe("recoveryKeyGroups", () => {
  it("splits the key into the groups a parent copies down", () => {
    expect(recoveryKeyGroups("0ABCD-EFGHJ-KMNPQ-RSTVW-XYZ01-2")).toEqual(["0ABCD", "EFGHJ", "KMNPQ", "RSTVW", "XYZ01", "2"]);
  });
  it("shows anything unexpected whole", () => {
    expect(recoveryKeyGroups("not a key")).toEqual(["not a key"]);
    expect(recoveryKeyGroups("abcde-fghjk")).toEqual(["abcde-fghjk"]);
  });
});
