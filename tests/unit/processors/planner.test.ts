import { describe, expect, it } from "vitest";
import { levelsOf, PlanError, stageInputs } from "../../../processors/pipeline/planner.ts";
import { checkFields } from "../../../processors/pipeline/signature-check.ts";
import { stage } from "./fixtures.ts";

describe("planner", () => {
  it("groups stages into dependency levels, independent ones together", () => {
    expect(
      levelsOf([
        { id: "d", dependsOn: ["b", "c"] },
        { id: "b", dependsOn: ["a"] },
        { id: "c", dependsOn: ["a"] },
        { id: "a", dependsOn: [] },
        { id: "e", dependsOn: [] },
      ]),
    ).toEqual([["a", "e"], ["b", "c"], ["d"]]);
  });

  it("refuses an unknown dependency and a cycle with a clear message", () => {
    expect(() => levelsOf([{ id: "a", dependsOn: ["ghost"] }])).toThrow(
      new PlanError("stage a depends on unknown stage ghost"),
    );
    expect(() =>
      levelsOf([
        { id: "a", dependsOn: [] },
        { id: "b", dependsOn: ["a", "d"] },
        { id: "c", dependsOn: ["b"] },
        { id: "d", dependsOn: ["c"] },
      ]),
    ).toThrow("stages form a cycle: b → d → c → b");
  });

  it("feeds a stage from its bindings, else from same-named upstream outputs, else from program inputs", () => {
    const s = stage("s", {
      inputs: ["question", "context", "hint"],
      outputs: ["answer"],
      dependsOn: ["r"],
      bindings: { hint: "input.topic" },
    });
    expect(
      stageInputs(s, { question: "q", context: "ignored", topic: "geo" }, { r: { context: "from r" } }),
    ).toEqual({
      question: "q",
      context: "from r",
      hint: "geo",
    });
  });
});

describe("signature checks", () => {
  const fields = [
    { name: "question", type: "str", optional: false },
    { name: "k", type: "int", optional: false, default: 3 },
    { name: "tags", type: "list[str]", optional: true },
    { name: "tone", type: 'Literal["formal", "casual"]', optional: true },
  ];

  it("applies defaults and accepts well-typed values", () => {
    expect(checkFields(fields, { question: "q", tags: ["a"], tone: "casual" })).toEqual({
      ok: true,
      values: { question: "q", k: 3, tags: ["a"], tone: "casual" },
    });
  });

  it("names the first field at fault", () => {
    expect(checkFields(fields, { question: "q", tags: ["a", 2] })).toEqual({
      ok: false,
      reason: "tags[1] must be a string",
    });
    expect(checkFields(fields, { question: "q", tone: "angry" })).toEqual({
      ok: false,
      reason: 'tone must be one of "formal", "casual"',
    });
    expect(checkFields(fields, { question: "q", k: 1.5 })).toEqual({
      ok: false,
      reason: "k must be an integer",
    });
  });
});
