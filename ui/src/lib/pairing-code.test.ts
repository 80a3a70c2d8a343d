import { describe, expect, it } from "vitest";
import { codeProblem, groupCode, normaliseCode } from "./pairing-code";

describe("normaliseCode", () => {
  it("forgives case, grouping, spaces and look-alike letters", () => {
    expect(normaliseCode("7kqm-3xwd-9p")).toBe("7KQM3XWD9P");
    expect(normaliseCode(" 7KQM 3XWD 9P ")).toBe("7KQM3XWD9P");
    expect(normaliseCode("7KQM\u20133XWD\u20149P")).toBe("7KQM3XWD9P");
    expect(normaliseCode("OIL0000000")).toBe("0110000000");
    expect(normaliseCode("waymark-pair:7KQM3XWD9P")).toBe("7KQM3XWD9P");
  });
  it("refuses wrong lengths and letters no code has", () => {
    expect(normaliseCode("7KQM-3XWD")).toBeNull();
    expect(normaliseCode("7KQM-3XWD-9PX")).toBeNull();
    expect(normaliseCode("7KQM-3XWD-9U")).toBeNull();
    expect(normaliseCode("7KQM-3XWD-9!")).toBeNull();
  });
});

describe("groupCode", () => {
  it("groups as the watch shows it, while typing", () => {
    expect(groupCode("7kq")).toBe("7KQ");
    expect(groupCode("7KQM3")).toBe("7KQM-3");
    expect(groupCode("7KQM3XWD9P")).toBe("7KQM-3XWD-9P");
    expect(groupCode("7KQM3XWD9PZZZ")).toBe("7KQM-3XWD-9P");
  });
});

describe("codeProblem", () => {
  it("says plainly what is wrong, and nothing when the code is fine", () => {
    expect(codeProblem("")).toBe("Type the code the watch shows.");
    expect(codeProblem("7KQM")).toContain("4 typed so far");
    expect(codeProblem("7KQM-3XWD-9U")).toContain("never contain the letter U");
    expect(codeProblem("7kqm 3xwd 9p")).toBeNull();
  });
});
