import { describe, expect, it } from "vitest";
import { asAppError } from "./api";

describe("asAppError", () => {
  it("keeps the core's code and sentence", () => {
    expect(asAppError({ code: "code_expired", message: "This code has expired — make a new one on the watch." })).toEqual({
      code: "code_expired",
      message: "This code has expired — make a new one on the watch.",
    });
  });
  it("turns anything else into a sentence a person can act on", () => {
    for (const thrown of ["boom", null, 42, { code: 1, message: "x" }]) {
      const e = asAppError(thrown);
      expect(e.code).toBe("unknown");
      expect(e.message).toMatch(/Try again/);
    }
  });
});
