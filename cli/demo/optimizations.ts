import type { JsonRecord } from "../../streams/events/index.ts";
import { classifyInstructions } from "./triage.ts";

/**
 * Instructions the searches may choose between for the classifier (the first is the program's own). The
 * offline model is a base model: instructions that list the categories made it worse (measured), so these
 * don't.
 */
export const instructionCandidates = [
  classifyInstructions,
  "Decide which category the customer's support message belongs to.",
  "Sort each customer message into the category of support it needs.",
];

/**
 * How each optimizer searches the classifier's variables in the main job: every one scores its
 * candidates on the devset — bootstrap and the searches also on the training examples a candidate does
 * not show as demos — and none sees the test split; the winner is adopted only if it beats the registry's
 * configuration on the devset by the margin (more than a one-example gain). The searches draw demos from
 * the training examples the program gets wrong (one pass over the trainset first) and race their 34
 * candidates (successive halving: all on ~11 examples, the best 11 on ~31, the best 3 on all ~90), which
 * spends about half the calls of scoring 16 on everything for the same winners, and stays within DSPy's
 * random search's calls. The settings were compared on the offline model and the test LM
 * (docs/benchmarks.md, "Learning on the offline model").
 */
export const optimizationOf = (
  optimizer: string,
): {
  outputs: string[];
  budget: { maxTrials?: number };
  seed: number;
  params: JsonRecord & { margin: number };
} => {
  const common = { outputs: ["category"], budget: {}, seed: 7 };
  const margin = 0.05;
  switch (optimizer) {
    case "bootstrap":
      return {
        ...common,
        params: {
          margin,
          maxBootstrappedDemos: 4,
          maxLabeledDemos: 4,
          candidates: 16,
          searchOn: "dev+train",
        },
      };
    case "simba":
      return { ...common, params: { margin, maxSteps: 4, bsize: 16, numCandidates: 4, maxDemos: 4 } };
    default:
      return {
        ...common,
        params: {
          margin,
          maxDemos: 6,
          trials: 34,
          rungs: 3,
          eta: 3,
          instructionCandidates,
          demoPool: "missed",
          searchOn: "dev+train",
        },
      };
  }
};
