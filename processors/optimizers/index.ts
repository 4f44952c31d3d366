import { bayesianSearch, randomSearch } from "./bayes.ts";
import { bootstrapFewShot } from "./bootstrap.ts";
import { simba } from "./simba.ts";
import type { Strategy } from "./strategy.ts";

export const optimizers = {
  bootstrap: bootstrapFewShot,
  simba,
  bayes: bayesianSearch,
  random: randomSearch,
} as const;

export type OptimizerName = keyof typeof optimizers;

export const strategyFor = (name: OptimizerName): Strategy<unknown> => optimizers[name] as Strategy<unknown>;

export { type OptimizationResult, type Progress, runOptimization } from "./driver.ts";
export { historyOf, trialEvaluationId } from "./history.ts";
export { type OptimizationSetup, setupOf } from "./setup.ts";
export type { Reflector, Strategy } from "./strategy.ts";
