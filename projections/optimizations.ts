import { jsonEqual } from "../programs/variables/types.ts";
import type { DspexEvent, JsonRecord } from "../streams/events/index.ts";
import type { Projection } from "./projection.ts";

export interface TrialView {
  trial: number;
  /** baseline, bootstrap, search, final... as the optimizer named it. */
  phase: string;
  /** The variables the trial ran with, by variable id. */
  overrides: JsonRecord;
  /** How many examples it was scored on. */
  examples: number;
  proposedAt: string;
  score?: number;
  /** LM calls the trial spent. */
  calls?: number;
}

export interface OptimizationView {
  optimizationId: string;
  programId?: string;
  optimizer?: string;
  variables: string[];
  plannedTrials?: number;
  plannedCalls?: number;
  startedAt?: string;
  status: "running" | "completed" | "failed";
  /** In trial order. */
  trials: TrialView[];
  finishedAt?: string;
  baselineScore?: number;
  bestScore?: number;
  bestConfig?: JsonRecord;
  accepted?: boolean;
  calls?: number;
  reason?: string;
}

const blank = (optimizationId: string): OptimizationView => ({
  optimizationId,
  variables: [],
  status: "running",
  trials: [],
});

const asRecord = (value: unknown): JsonRecord =>
  value !== null && typeof value === "object" && !Array.isArray(value) ? (value as JsonRecord) : {};

/** A trial put in its place (by number): a redelivered proposal or score replaces, never duplicates. */
const withTrial = (trials: readonly TrialView[], trial: TrialView): TrialView[] =>
  [...trials.filter((t) => t.trial !== trial.trial), trial].sort((a, b) => a.trial - b.trial);

/** Every optimization: its request, each trial's configuration and score, the winner and whether it was adopted. */
export const optimizationsProjection: Projection<OptimizationView> = {
  name: "optimizations",
  version: 1,
  types: [
    "OptimizationStarted",
    "TrialProposed",
    "TrialEvaluated",
    "OptimizationCompleted",
    "OptimizationFailed",
  ],
  keysOf: (event) => ("optimizationId" in event.data ? [event.data.optimizationId as string] : []),
  evolve: (entity, event: DspexEvent, key) => {
    const view = entity ?? blank(key);
    switch (event.type) {
      case "OptimizationStarted": {
        const { programId, optimizer, variables, plannedTrials, plannedCalls } = event.data;
        return {
          ...view,
          programId,
          optimizer,
          variables,
          plannedTrials,
          plannedCalls,
          startedAt: event.occurredAt,
        };
      }
      case "TrialProposed": {
        const { trial, config } = event.data;
        const known = view.trials.find((t) => t.trial === trial);
        const examples = config.examples;
        const proposed: TrialView = {
          ...known,
          trial,
          phase: typeof config.phase === "string" ? config.phase : "trial",
          overrides: asRecord(config.overrides),
          examples: Array.isArray(examples) ? examples.length : 0,
          proposedAt: event.occurredAt,
        };
        return { ...view, trials: withTrial(view.trials, proposed) };
      }
      case "TrialEvaluated": {
        const { trial, score, calls } = event.data;
        const known = view.trials.find((t) => t.trial === trial);
        const scored: TrialView = known
          ? { ...known, score, calls }
          : { trial, phase: "trial", overrides: {}, examples: 0, proposedAt: event.occurredAt, score, calls };
        return { ...view, trials: withTrial(view.trials, scored) };
      }
      case "OptimizationCompleted": {
        const { programId, baselineScore, bestScore, bestConfig, accepted, calls } = event.data;
        return {
          ...view,
          programId,
          status: "completed",
          finishedAt: event.occurredAt,
          baselineScore,
          bestScore,
          bestConfig,
          accepted,
          calls,
        };
      }
      case "OptimizationFailed":
        return {
          ...view,
          programId: event.data.programId,
          status: "failed",
          finishedAt: event.occurredAt,
          reason: event.data.reason,
        };
      default:
        return entity;
    }
  },
};

/**
 * The trial that scored the winner on the devset: the final one, or (when the winner's dev score was reused)
 * the best-scored trial that ran the winner's configuration.
 */
export const winnerTrialOf = (view: OptimizationView): TrialView | undefined => {
  const final = view.trials.filter((t) => t.phase === "final").at(-1);
  if (final) return final;
  const best = view.bestConfig;
  if (!best) return undefined;
  return view.trials
    .filter((t) => t.score !== undefined && jsonEqual(t.overrides, best))
    .sort((a, b) => b.examples - a.examples || (b.score ?? 0) - (a.score ?? 0))[0];
};

export interface DeadLetterView {
  id: string;
  at: string;
  topic: string;
  partition?: number;
  offset?: string;
  consumer?: string;
  reason: string;
  original: string;
  encoding: "utf8" | "base64";
}

/** Every dead letter with its reason and the original record, by the dead letter's id. */
export const deadLettersProjection: Projection<DeadLetterView> = {
  name: "dead-letters",
  version: 1,
  types: ["DeadLettered"],
  keysOf: (event) => [event.id],
  evolve: (entity, event) => {
    if (event.type !== "DeadLettered" || entity) return entity;
    const { source, reason, original, encoding } = event.data;
    return { id: event.id, at: event.occurredAt, ...source, reason, original, encoding };
  },
};
