import { metricRegistry } from "../../../processors/evaluation/metrics.ts";
import { type Evaluator, type ProgramRun, programEvaluator } from "../../../processors/evaluation/port.ts";
import { runOptimization } from "../../../processors/optimizers/driver.ts";
import { historyOf } from "../../../processors/optimizers/history.ts";
import { type OptimizerName, strategyFor } from "../../../processors/optimizers/index.ts";
import { setupOf } from "../../../processors/optimizers/setup.ts";
import type { Envelope } from "../../../streams/envelope.ts";
import type { DspexEvent, JsonRecord, VariableConstraint } from "../../../streams/events/index.ts";
import { labelExamples, labelProgram, labelTaskReflector, labelTaskRun } from "../../support/label-task.ts";

/** Evaluates on the label task's model (or `run`, another deterministic one), counting its calls. */
export const labelEvaluator = (run: ProgramRun = labelTaskRun): Evaluator & { calls: () => number } => {
  let calls = 0;
  const inner = programEvaluator(async (inputs, overrides) => {
    calls++;
    return run(inputs, overrides);
  }, metricRegistry());
  return { evaluate: (plan) => inner.evaluate(plan), calls: () => calls };
};

export const labelSetup = (
  optimizer: OptimizerName,
  params: JsonRecord = {},
  budget: { maxTrials?: number; maxCalls?: number } = {},
  seed = 7,
) =>
  setupOf(
    {
      optimizationId: `opt-${optimizer}-${seed}`,
      programId: "label-qa",
      optimizer,
      variables: [],
      trainset: labelExamples("train", 18),
      devset: labelExamples("dev", 12),
      metric: { name: "exact_match", field: "answer", params: {} },
      budget,
      seed,
      params,
    },
    labelProgram(),
  );

/** Runs an optimizer on the label task, recording its events; `crashAfter` events makes the log refuse more. */
export const runOnLabelTask = async (
  optimizer: OptimizerName,
  options: {
    params?: JsonRecord;
    budget?: { maxTrials?: number; maxCalls?: number };
    seed?: number;
    events?: DspexEvent[];
    crashAfter?: number;
    constraints?: VariableConstraint[];
    run?: ProgramRun;
  } = {},
) => {
  const labelled = labelSetup(optimizer, options.params, options.budget, options.seed);
  const setup = options.constraints ? { ...labelled, constraints: options.constraints } : labelled;
  const events: DspexEvent[] = [...(options.events ?? [])];
  const evaluator = labelEvaluator(options.run);
  const result = await runOptimization(setup, {
    strategy: strategyFor(optimizer, setup.params),
    evaluator,
    reflector: labelTaskReflector,
    history: historyOf(setup.optimizationId, events),
    async record(batch: Envelope[]) {
      for (const event of batch) {
        if (options.crashAfter !== undefined && events.length >= options.crashAfter) throw new Error("crash");
        events.push(event as DspexEvent);
      }
    },
  });
  return { result, events, lmCalls: evaluator.calls(), setup };
};
