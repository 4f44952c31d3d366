import type { Example, JsonRecord, ProgramDefinition } from "../../streams/events/index.ts";
import type { ProgramRun } from "../evaluation/port.ts";
import { randomFor } from "./random.ts";
import type { Reflector } from "./strategy.ts";

/**
 * A deterministic task where demos provably matter: each example has a label whose answer is a code
 * the test LM cannot know, except from a demo with the same label (or a rule in the instructions).
 * Without either, it says "unknown" at temperature 0 and guesses among the codes above it.
 */
export const LABELS = ["amber", "birch", "cedar", "delta", "ember", "flint"] as const;
export const codeOf = (label: string): string =>
  `${label.slice(0, 2).toUpperCase()}-${label.length * 7 + label.charCodeAt(0)}`;
export const CODES = LABELS.map(codeOf);

export const labelProgramId = "label-qa";
export const labelStage = "answer";
export const demosVariable = `${labelProgramId}.${labelStage}.demos`;
export const instructionsVariable = `${labelProgramId}.${labelStage}.instructions`;
export const temperatureVariable = `${labelProgramId}.${labelStage}.temperature`;

export const labelProgram = (maxDemos = 8): ProgramDefinition => ({
  programId: labelProgramId,
  version: 1,
  description: "answers the code of a label",
  inputs: [
    { name: "label", type: "str", optional: false },
    { name: "question", type: "str", optional: false },
  ],
  outputs: { answer: `${labelStage}.answer` },
  stages: [
    {
      id: labelStage,
      runtime: "dspy",
      module: "Predict",
      signature: {
        instructions: "Answer with the code of the label.",
        inputs: [
          { name: "label", type: "str", optional: false },
          { name: "question", type: "str", optional: false },
        ],
        outputs: [{ name: "answer", type: "str", optional: false }],
      },
      dependsOn: [],
      bindings: {},
      config: { model: "dspex/test" },
      variables: [
        { name: "demos", spec: { kind: "demos", maxItems: maxDemos }, initial: [] },
        {
          name: "instructions",
          spec: { kind: "text", maxLength: 4000 },
          initial: "Answer with the code of the label.",
        },
        { name: "temperature", spec: { kind: "float", min: 0, max: 1.5 }, initial: 0 },
      ],
    },
  ],
  variables: [],
});

/** `count` examples, labels in turn, ids prefixed (so train and dev sets don't share ids). */
export const labelExamples = (prefix: string, count: number, labels: readonly string[] = LABELS): Example[] =>
  Array.from({ length: count }, (_, i) => {
    const label = labels[i % labels.length]!;
    return {
      id: `${prefix}-${i}`,
      inputs: { label, question: `What is the code of ${label} #${i}?` },
      expected: { answer: codeOf(label) },
    };
  });

const overrideOf = (overrides: JsonRecord, name: string) =>
  overrides[`${labelProgramId}.${labelStage}.${name}`] ??
  overrides[`${labelStage}.${name}`] ??
  overrides[name];

/** Rules of the form "When label is X, answer Y." in the instructions. */
const rulesOf = (instructions: string): Map<string, string> =>
  new Map([...instructions.matchAll(/When label is (\S+?), answer (\S+?)\./g)].map((m) => [m[1]!, m[2]!]));

/** What the test LM answers on the label task, given the demos, instructions and temperature it runs with. */
export const labelTaskAnswer = (inputs: JsonRecord, overrides: JsonRecord): string => {
  const label = String(inputs.label);
  const demos = (overrideOf(overrides, "demos") ?? []) as JsonRecord[];
  const instructions = String(overrideOf(overrides, "instructions") ?? "");
  const temperature = Number(overrideOf(overrides, "temperature") ?? 0);
  const fromDemo = demos.find((d) => d.label === label)?.answer;
  if (fromDemo !== undefined) return String(fromDemo);
  const fromRule = rulesOf(instructions).get(label);
  if (fromRule !== undefined) return fromRule;
  if (temperature <= 0) return "unknown";
  const random = randomFor(Math.round(temperature * 1000), String(inputs.question));
  return CODES[Math.floor(random() * CODES.length)]!;
};

/** The test LM on the label task, in-process: one call per example. */
export const labelTaskRun: ProgramRun = async (inputs, overrides) => ({
  outputs: { answer: labelTaskAnswer(inputs, overrides) },
  calls: 1,
});

/** A reflection LM stand-in: states the rule the better run (or the expected answer) shows. */
export const labelTaskReflector: Reflector = {
  async reflect(request) {
    const answer =
      request.better && request.better.score > 0 ? request.better.outputs.answer : request.expected.answer;
    const advice = Object.fromEntries(
      Object.keys(request.modules).map((m) => [
        m,
        `When label is ${String(request.inputs.label)}, answer ${String(answer)}.`,
      ]),
    );
    return { advice, calls: 1 };
  },
};
