import { dspy, native, program, v } from "../../programs/index.ts";
import { categories } from "./dataset.ts";
import { faq } from "./faq.ts";

export const classifyInstructions = "Classify the customer's support message into one category.";

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
        `"${classifyInstructions}" message -> category: Literal[${categories.map((c) => `'${c}'`).join(", ")}]`,
      ),
      {
        variables: {
          demos: v.demos(8),
          // A classifier wants its most likely label: sampling hotter only adds noise.
          temperature: v.temperature(0, 0.3),
          instructions: v.instructions(classifyInstructions),
        },
      },
    )
    .stage("draft", dspy.predict("message, category, passages: list[str] -> reply"), {
      dependsOn: ["faq", "classify"],
      variables: { maxTokens: v.maxTokens(48) },
    })
    .output("category", "classify.category")
    .output("reply", "draft.reply");
