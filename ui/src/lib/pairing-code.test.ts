import { describe, expect, it } from "vitest";
import { APPROVAL_CODE_CHARS, codeProblem, groupCode, normaliseCode } from "./pairing-code";

describe("normaliseCode", () => {
  it("forgives case, grouping, spaces and look-alike letters", () => {
    expect(normaliseCode("7kqm-3xwd-9prb")).toBe("7KQM3XWD9PRB");
    expect(normaliseCode(" 7KQM 3XWD 9PRB ")).toBe("7KQM3XWD9PRB");
    expect(normaliseCode("7KQM\u20133XWD\u20149PRB")).toBe("7KQM3XWD9PRB");
    expect(normaliseCode("OIL000000000")).toBe("011000000000");
    expect(normaliseCode("waymark-pair:7KQM3XWD9PRB")).toBe("7KQM3XWD9PRB");
  });
  it("refuses wrong lengths and letters no code has", () => {
    expect(normaliseCode("7KQM-3XWD-9P")).toBeNull();
    expect(normaliseCode("7KQM-3XWD-9PRBX")).toBeNull();
    expect(normaliseCode("7KQM-3XWD-9PRU")).toBeNull();
    expect(normaliseCode("7KQM-3XWD-9PR!")).toBeNull();
  });
  it("takes an approval code's 10 characters when asked to", () => {
    expect(normaliseCode("7kqm-3xwd-9p", APPROVAL_CODE_CHARS)).toBe("7KQM3XWD9P");
    expect(normaliseCode("7KQM-3XWD-9PRB", APPROVAL_CODE_CHARS)).toBeNull();
  });
});

describe("groupCode", () => {
  it("groups as the watch shows it, while typing", () => {
    expect(groupCode("7kq")).toBe("7KQ");
    expect(groupCode("7KQM3")).toBe("7KQM-3");
    expect(groupCode("7KQM3XWD9PRB")).toBe("7KQM-3XWD-9PRB");
    expect(groupCode("7KQM3XWD9PRBZZZ")).toBe("7KQM-3XWD-9PRB");
    expect(groupCode("7KQM3XWD9PZZZ", APPROVAL_CODE_CHARS)).toBe("7KQM-3XWD-9P");
  });
});

describe("codeProblem", () => {
  it("says plainly what is wrong, and nothing when the code is fine", () => {
    expect(codeProblem("")).toBe("Type the code the watch shows.");
    expect(codeProblem("7KQM")).toContain("4 typed so far");
    expect(codeProblem("7KQM-3XWD-9PRU")).toContain("never contain the letter U");
    expect(codeProblem("7KQM-3XWD-9P")).toContain("12 letters and digits");
    expect(codeProblem("7kqm 3xwd 9prb")).toBeNull();
  });
});
