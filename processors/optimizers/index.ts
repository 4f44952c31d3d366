import type { JsonRecord, OptimizerName } from "../../streams/events/index.ts";
import { bayesianSearch, randomSearch } from "./bayes.ts";
import { bootstrapCandidates, bootstrapFewShot } from "./bootstrap.ts";
import { simba } from "./simba.ts";
import type { Strategy } from "./strategy.ts";

export type { OptimizerName };

export const optimizers = {
  bootstrap: bootstrapFewShot,
  simba,
  bayes: bayesianSearch,
  random: randomSearch,
} as const satisfies Record<OptimizerName, unknown>;

/** The strategy a request names; the bootstrap with `params.candidates` above 1 keeps the best of several on dev. */
export const strategyFor = (name: OptimizerName, params: JsonRecord = {}): Strategy<unknown> =>
  (name === "bootstrap" && typeof params.candidates === "number" && params.candidates > 1
    ? bootstrapCandidates
    : optimizers[name]) as Strategy<unknown>;

export { type OptimizationResult, type Progress, runOptimization } from "./driver.ts";
export { historyOf, trialEvaluationId } from "./history.ts";
export { type OptimizationSetup, setupOf } from "./setup.ts";
export type { Reflector, Strategy } from "./strategy.ts";
