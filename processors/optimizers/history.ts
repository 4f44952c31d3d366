import type { DspexEvent, EventOf, JsonRecord } from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import type { EvaluationOutcome } from "../evaluation/port.ts";
import type { Proposal, Trial } from "./strategy.ts";

/** The evaluation a trial runs as: derived from the optimization and trial number. */
export const trialEvaluationId = (optimizationId: string, trial: number): string =>
  derivedId(`optimization/${optimizationId}`, `trial/${trial}/evaluation`);

export interface RecordedTrial {
  trial: Trial;
  outcome?: EvaluationOutcome;
  /** Set once `TrialEvaluated` is written. */
  calls?: number;
  score?: number;
}

/** What an optimization's events say so far: a crashed optimizer resumes from this. */
export interface OptimizationHistory {
  optimizationId: string;
  started?: EventOf<"OptimizationStarted">["data"];
  trials: RecordedTrial[];
  completed?: EventOf<"OptimizationCompleted">["data"];
  failed?: EventOf<"OptimizationFailed">["data"];
}

export const emptyHistory = (optimizationId: string): OptimizationHistory => ({ optimizationId, trials: [] });

const asProposal = (config: JsonRecord): Proposal => ({
  phase: typeof config.phase === "string" ? config.phase : "search",
  overrides: (config.overrides ?? {}) as JsonRecord,
  examples: Array.isArray(config.examples) ? config.examples.map(String) : [],
});

/** The trial's config on the wire: what it evaluates, self-described. */
export const configOf = (proposal: Proposal): JsonRecord => ({
  phase: proposal.phase,
  overrides: proposal.overrides,
  examples: proposal.examples,
});

export const outcomeOf = (data: EventOf<"EvaluationCompleted">["data"]): EvaluationOutcome => ({
  evaluationId: data.evaluationId,
  score: data.score,
  results: data.results.map((r) => ({ ...r, calls: 0 })),
  errors: data.errors,
  usage: data.usage,
});

const withTrial = (
  history: OptimizationHistory,
  index: number,
  update: (t: RecordedTrial) => RecordedTrial,
) => {
  const trials = [...history.trials];
  trials[index] = update(trials[index]!);
  return { ...history, trials };
};

/** Folds one event of this optimization (its own events, and the evaluations of its trials). */
export const foldHistory = (history: OptimizationHistory, event: DspexEvent): OptimizationHistory => {
  const id = history.optimizationId;
  switch (event.type) {
    case "OptimizationStarted":
      return event.data.optimizationId === id ? { ...history, started: event.data } : history;
    case "TrialProposed": {
      if (event.data.optimizationId !== id || history.trials[event.data.trial]) return history;
      const trial = { ...asProposal(event.data.config), trial: event.data.trial, seed: event.data.seed };
      const trials = [...history.trials];
      trials[event.data.trial] = { trial };
      return { ...history, trials };
    }
    case "EvaluationCompleted": {
      const index = history.trials.findIndex(
        (t) => t && trialEvaluationId(id, t.trial.trial) === event.data.evaluationId,
      );
      if (index < 0 || history.trials[index]!.outcome) return history;
      return withTrial(history, index, (t) => ({ ...t, outcome: outcomeOf(event.data) }));
    }
    case "TrialEvaluated": {
      if (event.data.optimizationId !== id || !history.trials[event.data.trial]) return history;
      return withTrial(history, event.data.trial, (t) => ({
        ...t,
        calls: event.data.calls,
        score: event.data.score,
      }));
    }
    case "OptimizationCompleted":
      return event.data.optimizationId === id ? { ...history, completed: event.data } : history;
    case "OptimizationFailed":
      return event.data.optimizationId === id ? { ...history, failed: event.data } : history;
    default:
      return history;
  }
};

export const historyOf = (optimizationId: string, events: readonly DspexEvent[]): OptimizationHistory =>
  events.reduce(foldHistory, emptyHistory(optimizationId));
