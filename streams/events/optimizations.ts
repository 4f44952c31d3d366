import { z } from "zod";
import { Topics } from "../topics.ts";
import { Id, JsonRecord } from "./common.ts";
import { defineEvent } from "./define.ts";

export const OptimizationStarted = defineEvent("OptimizationStarted", {
  topic: Topics.optimizations,
  data: z.object({
    optimizationId: Id,
    programId: Id,
    optimizer: z.string().min(1),
    variables: z.array(z.string()),
    seed: z.number().int(),
    /** Announced before the run: the budget it will spend at most. */
    plannedTrials: z.number().int().nonnegative(),
    plannedCalls: z.number().int().nonnegative(),
  }),
});

export const TrialProposed = defineEvent("TrialProposed", {
  topic: Topics.optimizations,
  data: z.object({
    optimizationId: Id,
    trial: z.number().int().nonnegative(),
    config: JsonRecord,
    seed: z.number().int(),
  }),
});

export const TrialEvaluated = defineEvent("TrialEvaluated", {
  topic: Topics.optimizations,
  data: z.object({
    optimizationId: Id,
    trial: z.number().int().nonnegative(),
    score: z.number(),
    calls: z.number().int().nonnegative(),
  }),
});

export const OptimizationCompleted = defineEvent("OptimizationCompleted", {
  topic: Topics.optimizations,
  data: z.object({
    optimizationId: Id,
    programId: Id,
    baselineScore: z.number(),
    bestScore: z.number(),
    bestConfig: JsonRecord,
    accepted: z.boolean(),
    trials: z.number().int().nonnegative(),
    calls: z.number().int().nonnegative(),
  }),
});

/** An optimization that could not run or finish (unknown program, its leases not granted, lost...). */
export const OptimizationFailed = defineEvent("OptimizationFailed", {
  topic: Topics.optimizations,
  data: z.object({
    optimizationId: Id,
    programId: Id,
    reason: z.string().min(1),
  }),
});

export const optimizationEvents = [
  OptimizationStarted,
  TrialProposed,
  TrialEvaluated,
  OptimizationCompleted,
  OptimizationFailed,
] as const;
