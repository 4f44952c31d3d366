import { dspy, native, program, v } from "../../programs/index.ts";
import { categories } from "./dataset.ts";
import { faq } from "./faq.ts";

/**
 * Support triage: retrieve FAQ passages ∥ classify the message → draft a reply from both.
 * The classifier's demos and instructions are the variables the main job optimizes.
 */
export const triageProgram = (model: string) =>
  program("support-triage")
    .description("classify a support message and draft a reply grounded in the FAQ")
    .input("message: str(min_length=1)")
    .variable("model", v.model([model]))
    .stage("faq", native.retrieve("message -> passages: list[str]", { corpus: [...faq], k: 2 }))
    .stage(
      "classify",
      dspy.predict(
        `"Classify the customer's support message into one category." message -> category: Literal[${categories.map((c) => `'${c}'`).join(", ")}]`,
      ),
      { variables: { demos: v.demos(8), temperature: v.temperature(0) } },
    )
    .stage("draft", dspy.predict("message, category, passages: list[str] -> reply"), {
      dependsOn: ["faq", "classify"],
      variables: { maxTokens: v.maxTokens(48) },
    })
    .output("category", "classify.category")
    .output("reply", "draft.reply");
