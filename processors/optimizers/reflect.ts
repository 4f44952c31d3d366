import { firstValueFrom, timeout } from "rxjs";
import { readRegistry, registerProgram } from "../../programs/register.ts";
import { createClient } from "../../streams/client.ts";
import type { JsonRecord, ProgramDefinition } from "../../streams/events/index.ts";
import { newId } from "../../streams/ids.ts";
import type { EventLog } from "../../streams/log.ts";
import type { Reflection, ReflectionRequest, Reflector } from "./strategy.ts";

/**
 * SIMBA's reflection as a dspex program: one DSPy Predict with DSPy's OfferFeedback signature, run like
 * any other program (ExecutionRequested → a step on the Python workers → ExecutionCompleted), so each
 * rule an optimization appends is on the log with the LM call that wrote it.
 */
export const reflectionProgramId = "dspex-reflect";
export const reflectionStage = "reflect";

const text = (name: string, description: string) => ({ name, type: "str", optional: false, description });

const OFFER_FEEDBACK = `You will be given two trajectories of an LLM-driven program's execution. Your goal is to help the program's modules
build up experience on how to maximize the reward value assigned to the program's outputs if it were to receive
similar inputs in the future.

The module won't see its own history. It will rely on your advice balancing being concrete and being generalizable.

In your advice:
- Avoid boilerplate. Offer advice that would change the module's behavior for the better in the future.
- Ensure that advice offered to a module M is specific to that M's specific sub-task, not the overall program.
- Rely on contrasting the behavior of the worse trajectory against the better trajectory in making recommendations.
- Ensure each unique module name appears exactly once as a key in the advice dictionary.`;

const inputFields = [
  text("modules_defn", "The definition of each module in the program, including its instructions"),
  text("program_inputs", "The inputs to the program that we are analyzing"),
  text("oracle_metadata", "Any (hidden) metadata about the training set instance we're analyzing"),
  text("worse_program_trajectory", "The trajectory of the program's execution, showing each module's I/O"),
  text("worse_program_outputs", "The outputs of the program that we are analyzing"),
  text("worse_reward_value", "The reward value assigned to the program's outputs"),
  text("better_program_trajectory", "The trajectory of the program's execution, showing each module's I/O"),
  text("better_program_outputs", "The outputs of the program that we are analyzing"),
  text("better_reward_value", "The reward value assigned to the program's outputs"),
  {
    name: "module_names",
    type: "list[str]",
    optional: false,
    description: "The names of the modules in the program, for which we seek advice",
  },
];

export const reflectionProgram = (): ProgramDefinition => ({
  programId: reflectionProgramId,
  version: 1,
  description: "SIMBA's reflection (DSPy's OfferFeedback): advice per module from a better and a worse run",
  inputs: inputFields.map(({ name, type }) => ({ name, type, optional: false })),
  outputs: {
    discussion: `${reflectionStage}.discussion`,
    module_advice: `${reflectionStage}.module_advice`,
  },
  stages: [
    {
      id: reflectionStage,
      runtime: "dspy",
      module: "Predict",
      signature: {
        instructions: OFFER_FEEDBACK,
        inputs: inputFields,
        outputs: [
          text("discussion", "Discussing blame of where each module went wrong, if it did"),
          {
            name: "module_advice",
            type: "dict[str, str]",
            optional: false,
            // DSPy's wording, placeholders and all.
            description:
              // biome-ignore lint/suspicious/noTemplateCurlyInString: literal placeholders for the LM
              "For each module, describe very concretely: If the module receives ${description of input or patterns therein}, " +
              // biome-ignore lint/suspicious/noTemplateCurlyInString: literal placeholders for the LM
              "then it should ${description of content, behavior, or strategies to adopt and/or others to avoid}.",
          },
        ],
      },
      dependsOn: [],
      bindings: {},
      config: { model: "dspex/test" },
      // The reflection LM is chosen per request (an override), as DSPy's SIMBA takes a prompt_model.
      variables: [{ name: "model", spec: { kind: "text", maxLength: 500 }, initial: "dspex/test" }],
    },
  ],
  variables: [],
  constraints: [],
});

const json = (value: unknown) => JSON.stringify(value);
const unavailable = json({ "N/A": "Prediction not available" });

const trajectory = (request: ReflectionRequest, run: ReflectionRequest["better"]) =>
  run ? json([{ module_name: "program", inputs: request.inputs, outputs: run.outputs }]) : json([]);

/** The reflection program's inputs for a request (what DSPy's append_a_rule passes to OfferFeedback). */
export const reflectionInputs = (request: ReflectionRequest): JsonRecord => ({
  modules_defn: Object.entries(request.modules)
    .map(([name, instructions]) => `Module ${name}\n\tInstructions: ${instructions}`)
    .join("\n"),
  program_inputs: json(request.inputs),
  oracle_metadata: json(request.expected),
  worse_program_trajectory: trajectory(request, request.worse),
  worse_program_outputs: request.worse ? json(request.worse.outputs) : unavailable,
  worse_reward_value: request.worse ? String(request.worse.score) : "N/A",
  better_program_trajectory: trajectory(request, request.better),
  better_program_outputs: request.better ? json(request.better.outputs) : unavailable,
  better_reward_value: request.better ? String(request.better.score) : "N/A",
  module_names: Object.keys(request.modules),
});

/** The advice in the reflection's outputs: module → rule (anything else is ignored). */
export const adviceOf = (outputs: JsonRecord): Record<string, string> => {
  const advice = outputs.module_advice;
  if (!advice || typeof advice !== "object" || Array.isArray(advice)) return {};
  return Object.fromEntries(
    Object.entries(advice).flatMap(([module, rule]) =>
      typeof rule === "string" && rule.trim() ? [[module, rule.trim()]] : [],
    ),
  );
};

/** Registers the reflection program unless the log already has this version. */
export const ensureReflectionProgram = async (log: EventLog): Promise<void> => {
  const program = reflectionProgram();
  const known = (await readRegistry(log)).programs.get(program.programId);
  if (known?.version !== program.version) await registerProgram(log, program);
};

export interface StreamReflectorOptions {
  /** The reflection LM (default: the reflection program's, `dspex/test`). */
  model?: string;
  timeoutMs?: number;
}

/**
 * Reflections through the log: an `ExecutionRequested` of the reflection program (its request id is the
 * reflection's id, so a resumed optimization finds the answer already there instead of asking again),
 * and the advice from its `ExecutionCompleted`. A failed reflection advises nothing (its calls still count).
 */
export const streamReflector = (log: EventLog, options: StreamReflectorOptions = {}): Reflector => {
  let registered: Promise<void> | undefined;
  const client = createClient(log);
  return {
    async reflect(request): Promise<Reflection> {
      registered ??= ensureReflectionProgram(log);
      await registered;
      const requestId = request.reflectionId ?? newId();
      const result = firstValueFrom(
        client
          .results$(requestId, { from: "beginning" })
          .pipe(timeout({ first: options.timeoutMs ?? 600_000 })),
      );
      result.catch(() => undefined);
      await client.publish({
        requestId,
        programId: reflectionProgramId,
        inputs: reflectionInputs(request),
        overrides: options.model ? { model: options.model } : {},
      });
      const event = await result;
      if (event.type === "ExecutionCompleted")
        return { advice: adviceOf(event.data.outputs), calls: event.data.usage.calls };
      return { advice: {}, calls: event.type === "ExecutionFailed" ? event.data.usage.calls : 0 };
    },
  };
};
