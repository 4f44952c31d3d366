import { describe, expect, it } from "vitest";
import {
  levelsOf,
  PlanError,
  resolveVariables,
  stageInputs,
  stepSettings,
} from "../../../processors/pipeline/planner.ts";
import { checkFields } from "../../../processors/pipeline/signature-check.ts";
import { dspy, program, v } from "../../../programs/builder.ts";
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

describe("variables at dispatch", () => {
  const built = program("composed")
    .input("question: str")
    .variable("tone", v.text("Be brief."))
    .variable("level", v.integer(1, 5, 2))
    .variable("budget", v.composite(["level"], "sum"))
    .stage("answer", dspy.predict("question -> answer"), {
      variables: {
        persona: v.text("You are a support agent."),
        rule: v.text("When question is ping, answer pong."),
        instructions: v.composite(["persona", "rule"], "join"),
      },
    })
    .build();
  const answer = built.stages[0]!;

  it("compute composites from the registry's values and the request's overrides, per scope", () => {
    const registry = { "composed.answer.rule": { value: "When question is ping, answer pang.", version: 2 } };
    const resolved = resolveVariables(built, answer, registry, { "composed.level": 4 });
    expect(resolved.instructions!.value).toBe(
      "You are a support agent.\nWhen question is ping, answer pang.",
    );
    expect(resolved.budget!.value).toBe(4);
    expect(stepSettings(answer, resolved).instructions).toBe(
      "You are a support agent.\nWhen question is ping, answer pang.",
    );
  });

  it("compute them from the initial values when nothing was set", () => {
    const resolved = resolveVariables(built, answer, {}, {});
    expect(resolved.instructions!.value).toBe(
      "You are a support agent.\nWhen question is ping, answer pong.",
    );
    expect(resolved.budget!.value).toBe(2);
  });
});
