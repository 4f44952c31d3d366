import { dspy, native, program, v } from "../../programs/index.ts";

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
