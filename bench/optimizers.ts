import { metricRegistry } from "../processors/evaluation/metrics.ts";
import { programEvaluator } from "../processors/evaluation/port.ts";
import { runOptimization } from "../processors/optimizers/driver.ts";
import { type OptimizerName, strategyFor } from "../processors/optimizers/index.ts";
import { setupOf } from "../processors/optimizers/setup.ts";
import { findPython } from "../processors/workers/python.ts";
import type { JsonRecord } from "../streams/events/index.ts";
import { bootstrapTask, runDspyBootstrap } from "../tests/support/dspy-reference.ts";
import {
  labelExamples,
  labelProgram,
  labelTaskReflector,
  labelTaskRules,
  labelTaskRun,
} from "../tests/support/label-task.ts";
import { report, type Suite } from "./report.ts";

/** Each optimizer with the parameters it runs with on the label task (6 labels, 36 train, 24 dev). */
const runs: Record<OptimizerName, JsonRecord> = {
  bootstrap: { maxBootstrappedDemos: 4, maxLabeledDemos: 4, maxRounds: 1 },
  simba: { bsize: 8, numCandidates: 4, maxSteps: 6, maxDemos: 6 },
  bayes: { trials: 30, maxDemos: 6 },
  random: { trials: 30, maxDemos: 6 },
};

const setupFor = (optimizer: OptimizerName) =>
  setupOf(
    {
      optimizationId: `bench-${optimizer}`,
      programId: "label-qa",
      optimizer,
      variables: [],
      trainset: labelExamples("train", 36),
      devset: labelExamples("dev", 24),
      metric: { name: "exact_match", field: "answer", params: {} },
      budget: {},
      seed: 0,
      params: runs[optimizer],
    },
    labelProgram(),
  );

/** DSPy's own BootstrapFewShot on the same task and test LM (needs the consumers' Python). */
const dspyBootstrap = async () => {
  const { python, reason } = findPython();
  if (!python) return console.log(`# optimizers: DSPy's BootstrapFewShot skipped (${reason})`);
  const result = await runDspyBootstrap(
    python,
    bootstrapTask(setupFor("bootstrap"), labelProgram(), labelTaskRules()),
  );
  report("optimizers", "dspy_bootstrap.baseline_dev_score", result.baselineScore, "");
  report("optimizers", "dspy_bootstrap.final_dev_score", result.devScore, "");
  report("optimizers", "dspy_bootstrap.lm_calls", result.calls.total, "calls");
  report("optimizers", "dspy_bootstrap.wall_time", result.wallMs, "ms");
};

export const optimizersSuite: Suite = {
  name: "optimizers",
  description:
    "each optimizer on the label task (test LM in-process, seed 0): baseline and final dev score, LM calls, wall time; " +
    "and DSPy's own BootstrapFewShot on the same task and test LM (Python)",
  async run() {
    for (const optimizer of Object.keys(runs) as OptimizerName[]) {
      const setup = setupFor(optimizer);
      const started = process.hrtime.bigint();
      const result = await runOptimization(setup, {
        strategy: strategyFor(optimizer),
        evaluator: programEvaluator(labelTaskRun, metricRegistry()),
        reflector: labelTaskReflector,
        record: async () => undefined,
      });
      const wall = Number(process.hrtime.bigint() - started) / 1e6;
      report("optimizers", `${optimizer}.baseline_dev_score`, result.baselineScore, "");
      report("optimizers", `${optimizer}.final_dev_score`, result.candidateScore, "");
      report("optimizers", `${optimizer}.lm_calls`, result.calls, "calls");
      report("optimizers", `${optimizer}.planned_calls`, result.plannedCalls, "calls");
      report("optimizers", `${optimizer}.trials`, result.trials, "trials");
      report("optimizers", `${optimizer}.wall_time`, wall, "ms");
    }
    await dspyBootstrap();
  },
};

if (import.meta.url === `file://${process.argv[1]}`) await optimizersSuite.run();
