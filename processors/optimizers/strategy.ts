import type { JsonRecord } from "../../streams/events/index.ts";
import type { EvaluationOutcome } from "../evaluation/port.ts";
import type { Random } from "./random.ts";
import type { OptimizationSetup } from "./setup.ts";

/** What a trial evaluates: overrides on some examples; `phase` says what the trial is for. */
export interface Proposal {
  phase: string;
  overrides: JsonRecord;
  /** Example ids, from the trainset or (baseline and final trials) the devset. */
  examples: string[];
}

export interface Trial extends Proposal {
  trial: number;
  seed: number;
}

/** A trial and how it went, exactly as the log keeps it (so a resumed run sees the same). */
export interface TrialResult {
  trial: Trial;
  outcome: EvaluationOutcome;
  calls: number;
}

/** Asks an LM for advice given the better and the worse trajectory of one example (SIMBA's rules). */
export interface Reflector {
  reflect(request: ReflectionRequest): Promise<Reflection>;
}

export interface Reflection {
  /** Per predictor (stage id): the rule to append to its instructions. */
  advice: Readonly<Record<string, string>>;
  calls: number;
}

export interface ReflectionRequest {
  programId: string;
  /** Predictor (stage id) names and their instructions now. */
  modules: Readonly<Record<string, string>>;
  inputs: JsonRecord;
  expected: JsonRecord;
  better: { outputs: JsonRecord; score: number } | undefined;
  worse: { outputs: JsonRecord; score: number } | undefined;
  /** Set by the driver: the reflection's id on the log (derived from the optimization and the trial). */
  reflectionId?: string;
}

/** What a strategy may ask for instead of a trial: a reflection, whose answer it folds with `reflected`. */
export interface ReflectionNeed {
  reflect: ReflectionRequest;
}

export interface ProposeContext {
  /** The trial's own random source: seeded from the run's seed and the trial number. */
  random: Random;
  trial: number;
}

export interface Plan {
  /** Search trials at most (baseline and final evaluations not included). */
  trials: number;
  /** Example runs of the search at most (each costs `callsPerExample` LM calls). */
  exampleRuns: number;
  /** LM calls outside example runs (reflections). */
  extraCalls: number;
}

/**
 * An optimization algorithm as a pure state machine: its state is a fold of the trials it has seen,
 * and the next proposal is a function of that state and a seeded random source.
 */
export interface Strategy<S> {
  readonly name: string;
  plan(setup: OptimizationSetup): Plan;
  init(setup: OptimizationSetup): S;
  /**
   * The next trial, a reflection to run first (its answer comes back through `reflected`, then
   * `propose` is asked again), or undefined when the search is over.
   */
  propose(state: S, setup: OptimizationSetup, ctx: ProposeContext): Proposal | ReflectionNeed | undefined;
  /** Folds a reflection's answer (only strategies that ask for reflections). */
  reflected?(state: S, setup: OptimizationSetup, reflection: Reflection): S;
  observe(state: S, setup: OptimizationSetup, result: TrialResult): S;
  /** The overrides the search would keep, with the score it saw them get (not the dev score). */
  best(state: S, setup: OptimizationSetup): { overrides: JsonRecord; score: number } | undefined;
}

/** A reflector that never advises (for strategies that don't reflect). */
export const silentReflector: Reflector = {
  reflect: async () => ({ advice: {}, calls: 0 }),
};
