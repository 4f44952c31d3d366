import { expect } from "vitest";
import { dspy, native, program, v } from "../../programs/index.ts";
import type { ExecutionResult } from "../../streams/client.ts";

/** A 3-stage program mixing native and DSPy stages: retrieve ∥ classify → draft, with the test LM. */
export const mixedTriage = (programId: string) =>
  program(programId)
    .input("message: str")
    .variable("model", v.model(["dspex/test"]))
    .stage(
      "faq",
      native.retrieve("message -> passages: list[str]", {
        corpus: ["refunds take 5 days", "reset your password"],
        k: 1,
      }),
    )
    .stage("classify", dspy.predict("message -> category: Literal['billing', 'account']"))
    .stage("draft", dspy.chainOfThought("message, category, passages: list[str] -> reply"), {
      dependsOn: ["faq", "classify"],
    })
    .output("category", "classify.category")
    .output("reply", "draft.reply");

/** The messages every `mixedTriage` test sends, and what each of their results must show. */
export const triageMessages = ["I was charged twice", "I forgot my password", "Where is my invoice?"];

export const expectTriageCompleted = (results: ExecutionResult[]): void => {
  for (const result of results) {
    expect(result.type).toBe("ExecutionCompleted");
    if (result.type !== "ExecutionCompleted") continue;
    expect(["billing", "account"]).toContain(result.data.outputs.category);
    expect(typeof result.data.outputs.reply).toBe("string");
    expect(Object.keys(result.data.stages).sort()).toEqual(["classify", "draft", "faq"]);
    expect(result.data.usage.calls).toBeGreaterThanOrEqual(2);
  }
};
