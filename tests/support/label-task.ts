import { createHash } from "node:crypto";
import type { ProgramRun } from "../../processors/evaluation/port.ts";
import { reflectionInputs } from "../../processors/optimizers/reflect.ts";
import type { ReflectionRequest, Reflector } from "../../processors/optimizers/strategy.ts";
import type { Example, JsonRecord, ProgramDefinition } from "../../streams/events/index.ts";

/**
 * A deterministic task where demos provably matter: each example has a label whose answer is a code
 * the test LM cannot know, except from a demo with that code (or a rule in the instructions). Without
 * either it answers wrong at temperature 0 and guesses among the codes above it. The LM is the Python
 * workers' `dspex/test?mode=demo_gated` with one rule per label (`labelTaskRules`); `labelTaskAnswer`
 * is the same function in TypeScript, for in-process runs (tests/unit/optimizers checks both against
 * the same vectors).
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

/** The test LM the label task runs on (the rules come from the workers' `--test-answers`). */
export const labelTaskModel = "dspex/test?mode=demo_gated";

/** The test LM's rules for the label task: the label's section in the prompt → its code (`code` renames them all). */
export const labelTaskRules = (labels: readonly string[] = LABELS, code = codeOf): JsonRecord[] =>
  labels.map((label) => ({
    when: `[[ ## label ## ]]\n${label}\n\n[[ ## question ## ]]`,
    // biome-ignore lint/suspicious/noThenProperty: the test LM's rule format ({when, then}), never awaited
    then: { answer: code(label) },
  }));

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
      config: { model: labelTaskModel },
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
  constraints: [],
});

/** `count` examples, labels in turn, ids prefixed (so train and dev sets don't share ids). */
export const labelExamples = (
  prefix: string,
  count: number,
  labels: readonly string[] = LABELS,
  code = codeOf,
): Example[] =>
  Array.from({ length: count }, (_, i) => {
    const label = labels[i % labels.length]!;
    return {
      id: `${prefix}-${i}`,
      inputs: { label, question: `What is the code of ${label} #${i}?` },
      expected: { answer: code(label) },
    };
  });

const overrideOf = (overrides: JsonRecord, name: string) =>
  overrides[`${labelProgramId}.${labelStage}.${name}`] ??
  overrides[`${labelStage}.${name}`] ??
  overrides[name];

/** Python's `json.dumps(inputs, sort_keys=True)` of the prompt's input sections (strings, stripped). */
const pythonJson = (inputs: JsonRecord): string => {
  const ascii = (text: string) =>
    JSON.stringify(text).replace(
      /[\u0080-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  const entries = Object.keys(inputs)
    .sort()
    .map((key) => `${ascii(key)}: ${ascii(String(inputs[key]).trim())}`);
  return `{${entries.join(", ")}}`;
};

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

/** The rule the instructions state for these inputs ("When label is amber, answer AM-132."); the last wins. */
const toldAnswer = (instructions: string, inputs: JsonRecord): string | undefined => {
  let told: string | undefined;
  for (const [, field, value, answer] of instructions.matchAll(/When (\w+) is (\S+?), answer (\S+?)\./g))
    if (inputs[field!] !== undefined && String(inputs[field!]).trim() === value) told = answer;
  return told;
};

/** Which of `count` answers a sampling run guesses: the temperature in thousandths and the inputs, hashed. */
const guessIndex = (seed: string, temperature: number, count: number): number =>
  Number.parseInt(sha256(`${Math.floor(temperature * 1000 + 0.5)}/${seed}`).slice(0, 8), 16) % count;

/**
 * What the test LM (`dspex/test?mode=demo_gated` with `labelTaskRules`) answers on the label task, given
 * the demos, instructions and temperature it runs with: the code when a demo carries it, else a rule in
 * the instructions, else a guess among the codes when sampling, else a wrong answer.
 */
export const labelTaskAnswer = (inputs: JsonRecord, overrides: JsonRecord): string => {
  const label = String(inputs.label).trim();
  const demos = (overrideOf(overrides, "demos") ?? []) as JsonRecord[];
  const instructions = String(overrideOf(overrides, "instructions") ?? "");
  const temperature = Number(overrideOf(overrides, "temperature") ?? 0);
  const seed = sha256(pythonJson(inputs));
  if (!LABELS.includes(label as never))
    return `answer ${String(Number.parseInt(sha256(`${seed}/answer`).slice(0, 8), 16) % 100000).padStart(5, "0")}`;
  const code = codeOf(label);
  if (demos.some((d) => d.answer !== undefined && String(d.answer).trim() === code)) return code;
  const told = toldAnswer(instructions, inputs);
  if (told !== undefined) return told;
  if (temperature > 0) return CODES[guessIndex(seed, temperature, CODES.length)]!;
  return `not ${code} (${seed.slice(0, 4)})`;
};

/** The test LM on the label task, in-process: one call per example. */
export const labelTaskRun: ProgramRun = async (inputs, overrides) => ({
  outputs: { answer: labelTaskAnswer(inputs, overrides) },
  calls: 1,
});

const parsed = (value: unknown): unknown => {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
};

const isRecord = (value: unknown): value is JsonRecord =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The test LM's answer to a reflection prompt (the reflection program's inputs), as the Python test LM
 * writes it: per module, "When <first program input> is <its value>, answer <the better run's first
 * output if it scored above 0, else the first expected value>."
 */
export const testLmReflection = (inputs: JsonRecord): { discussion: string; module_advice: JsonRecord } => {
  const names = parsed(inputs.module_names);
  const programInputs = parsed(inputs.program_inputs);
  const better = parsed(inputs.better_program_outputs);
  const expected = parsed(inputs.oracle_metadata);
  const reward = Number(inputs.better_reward_value);
  const source =
    reward > 0 && isRecord(better) && Object.keys(better).length > 0 && !("N/A" in better)
      ? better
      : expected;
  const advice: JsonRecord = {};
  if (Array.isArray(names) && isRecord(programInputs) && isRecord(source)) {
    const [field, value] = Object.entries(programInputs)[0] ?? [];
    const answer = Object.values(source)[0];
    const text = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));
    if (field !== undefined && answer !== undefined)
      for (const name of names)
        advice[String(name)] = `When ${field} is ${text(value)}, answer ${text(answer)}.`;
  }
  return { discussion: "The better run knew the code.", module_advice: advice };
};

/** The test LM's advice for a reflection request (what the reflection program gets it as inputs). */
export const testLmAdvice = (request: ReflectionRequest): Record<string, string> =>
  testLmReflection(reflectionInputs(request)).module_advice as Record<string, string>;

/** The reflection LM in-process: the test LM's advice, one call. */
export const labelTaskReflector: Reflector = {
  reflect: async (request) => ({ advice: testLmAdvice(request), calls: 1 }),
};
