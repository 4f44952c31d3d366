import { metricRegistry } from "../processors/evaluation/metrics.ts";
import { programEvaluator } from "../processors/evaluation/port.ts";
import { runOptimization } from "../processors/optimizers/driver.ts";
import { type OptimizerName, strategyFor } from "../processors/optimizers/index.ts";
import {
  labelExamples,
  labelProgram,
  labelTaskReflector,
  labelTaskRun,
} from "../processors/optimizers/label-task.ts";
import { setupOf } from "../processors/optimizers/setup.ts";
import type { JsonRecord } from "../streams/events/index.ts";
import { report, type Suite } from "./report.ts";

/** Each optimizer with the parameters it runs with on the label task (6 labels, 36 train, 24 dev). */
const runs: Record<OptimizerName, JsonRecord> = {
  bootstrap: { maxBootstrappedDemos: 4, maxLabeledDemos: 4 },
  simba: { bsize: 8, numCandidates: 4, maxSteps: 6, maxDemos: 6 },
  bayes: { trials: 30, maxDemos: 6 },
  random: { trials: 30, maxDemos: 6 },
};

export const optimizersSuite: Suite = {
  name: "optimizers",
  description:
    "each optimizer on the label task (test LM in-process): baseline and final dev score, LM calls, wall time",
  async run() {
    for (const [optimizer, params] of Object.entries(runs) as [OptimizerName, JsonRecord][]) {
      const setup = setupOf(
        {
          optimizationId: `bench-${optimizer}`,
          programId: "label-qa",
          optimizer,
          variables: [],
          trainset: labelExamples("train", 36),
          devset: labelExamples("dev", 24),
          metric: { name: "exact_match", field: "answer", params: {} },
          budget: {},
          seed: 42,
          params,
        },
        labelProgram(),
      );
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
  },
};

if (import.meta.url === `file://${process.argv[1]}`) await optimizersSuite.run();
