import type { Example, JsonRecord } from "../../streams/events/index.ts";
import { demoFor, type OptimizationSetup } from "./setup.ts";
import type { ReflectionRequest } from "./strategy.ts";

/** A program as SIMBA evolves it: per predictor (stage id), its demos and instructions. */
export interface ProgramConfig {
  demos: Readonly<Record<string, JsonRecord[]>>;
  instructions: Readonly<Record<string, string>>;
}

/** One run of one example by one (program, temperature) pair. */
export interface Trajectory {
  exampleId: string;
  program: number;
  temperature: number;
  score: number;
  outputs: JsonRecord;
}

/** The trajectories of one example, best first. */
export type Bucket = readonly Trajectory[];

export interface StrategyInput {
  setup: OptimizationSetup;
  bucket: Bucket;
  example: Example;
  program: ProgramConfig;
  /** 10th and 90th percentiles of the batch's trajectory scores. */
  low: number;
  high: number;
}

export type StrategyOutcome = { program: ProgramConfig; applied: boolean };

/** AppendDemo: the best trajectory of the bucket becomes a demo of every predictor it went through. */
export const appendDemo = (input: StrategyInput): StrategyOutcome => {
  const good = input.bucket[0];
  if (!good || good.score <= input.low) return { program: input.program, applied: false };
  const demos: Record<string, JsonRecord[]> = { ...input.program.demos };
  let applied = false;
  for (const predictor of input.setup.predictors) {
    if (!predictor.demosVariable) continue;
    const demo = demoFor(predictor, input.example.inputs, good.outputs);
    if (!demo) continue;
    demos[predictor.stageId] = [...(demos[predictor.stageId] ?? []), demo];
    applied = true;
  }
  return { program: { ...input.program, demos }, applied };
};

/**
 * AppendRule, first half: what to ask the reflection LM about the bucket's best and worst trajectory
 * (undefined when the bucket says nothing: no run above the 10th percentile, or none below the 90th).
 */
export const ruleRequest = (input: StrategyInput): ReflectionRequest | undefined => {
  const good = input.bucket[0];
  const bad = input.bucket.at(-1);
  if (!good || !bad || good.score <= input.low || bad.score >= input.high) return undefined;
  // Equal scores: keep only the side that says something (a good run above the 90th percentile, else the bad one).
  const tie = good.score <= bad.score;
  const better = !tie || good.score > input.high ? { outputs: good.outputs, score: good.score } : undefined;
  const worse = !tie || good.score <= input.high ? { outputs: bad.outputs, score: bad.score } : undefined;
  return {
    programId: input.setup.programId,
    modules: Object.fromEntries(
      input.setup.predictors.map((p) => [p.stageId, input.program.instructions[p.stageId] ?? p.instructions]),
    ),
    inputs: input.example.inputs,
    expected: input.example.expected,
    better,
    worse,
  };
};

/** AppendRule, second half: the LM's advice appended to each predictor's instructions. */
export const appendRule = (
  input: StrategyInput,
  advice: Readonly<Record<string, string>>,
): StrategyOutcome => {
  const instructions: Record<string, string> = { ...input.program.instructions };
  let applied = false;
  for (const predictor of input.setup.predictors) {
    const text = advice[predictor.stageId];
    if (!text || !predictor.instructionsVariable) continue;
    const current = instructions[predictor.stageId] ?? predictor.instructions;
    instructions[predictor.stageId] = current ? `${current}\n\n${text}` : text;
    applied = true;
  }
  return { program: { ...input.program, instructions }, applied };
};
