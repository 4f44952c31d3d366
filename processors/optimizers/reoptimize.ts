import { causedBy } from "../../streams/envelope.ts";
import {
  type DspexEvent,
  type EventOf,
  executionMetric,
  failureRateMetric,
  OptimizationRequested,
  optimizationMetric,
} from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import { Topics } from "../../streams/topics.ts";
import type { Output, Processor, ProcessorContext } from "../runtime/index.ts";

type RequestData = EventOf<"OptimizationRequested">["data"];

/** When to re-optimize a program, and with what. */
export interface ReoptimizationPolicy {
  programId: string;
  /**
   * What starts an optimization: quality below `threshold` over a window (the mean of `metric` if it was
   * recorded, else the success rate), or an AlertRaised on the program's quality series (`metric`, else
   * `execution.failure_rate`) from the alerts processor, which watches its trend.
   */
  trigger?: "threshold" | "alert";
  threshold: number;
  /** MetricRecorded name that carries a quality score per execution (e.g. an online judge). */
  metric?: string;
  /** Executions to see (since the last optimization) before judging. */
  minExecutions: number;
  /** How much the winner must beat the current configuration by on the devset to be adopted. */
  margin: number;
  request: Omit<RequestData, "optimizationId" | "programId">;
}

interface Watch {
  executions: number;
  succeeded: number;
  scoreSum: number;
  scores: number;
  generation: number;
  running?: string;
}

export interface ReoptimizationState {
  watches: Readonly<Record<string, Watch>>;
}

const fresh = (generation: number): Watch => ({
  executions: 0,
  succeeded: 0,
  scoreSum: 0,
  scores: 0,
  generation,
});

/** The quality the policy watches, once enough executions were seen. */
export const qualityOf = (watch: Watch, policy: ReoptimizationPolicy): number | undefined => {
  if (watch.executions < policy.minExecutions) return undefined;
  return policy.metric && watch.scores > 0
    ? watch.scoreSum / watch.scores
    : watch.succeeded / watch.executions;
};

const keep = (state: ReoptimizationState, programId: string, watch: Watch): Output<ReoptimizationState> => ({
  state: { watches: { ...state.watches, [programId]: watch } },
  emit: [],
});

const maybeStart = (
  state: ReoptimizationState,
  watch: Watch,
  policy: ReoptimizationPolicy,
  cause: DspexEvent,
  ctx: ProcessorContext,
): Output<ReoptimizationState> => {
  const quality = qualityOf(watch, policy);
  if (policy.trigger === "alert" || watch.running || quality === undefined || quality >= policy.threshold)
    return keep(state, policy.programId, watch);
  return start(state, watch, policy, cause, ctx, { triggeredAtQuality: quality });
};

/** The series whose alert starts the policy's optimization. */
export const qualitySeries = (policy: ReoptimizationPolicy): string => policy.metric ?? failureRateMetric;

const answerAlert = (
  state: ReoptimizationState,
  watch: Watch,
  policy: ReoptimizationPolicy,
  alert: EventOf<"AlertRaised">,
  ctx: ProcessorContext,
): Output<ReoptimizationState> => {
  if (policy.trigger !== "alert" || watch.running || alert.data.metric !== qualitySeries(policy))
    return { state, emit: [] };
  return start(state, watch, policy, alert, ctx, {
    triggeredByAlert: alert.data.alertId,
    triggeredAtQuality: alert.data.current,
  });
};

const start = (
  state: ReoptimizationState,
  watch: Watch,
  policy: ReoptimizationPolicy,
  cause: DspexEvent,
  ctx: ProcessorContext,
  why: Record<string, string | number>,
): Output<ReoptimizationState> => {
  const optimizationId = derivedId(`reoptimize/${policy.programId}`, `generation/${watch.generation}`);
  const request = OptimizationRequested.create({
    id: derivedId(optimizationId, "requested"),
    stream: `optimization-${optimizationId}`,
    key: optimizationId,
    occurredAt: new Date(ctx.now).toISOString(),
    ...causedBy(cause),
    data: {
      ...policy.request,
      optimizationId,
      programId: policy.programId,
      params: { ...policy.request.params, margin: policy.margin, ...why },
    },
  });
  return {
    state: { watches: { ...state.watches, [policy.programId]: { ...watch, running: optimizationId } } },
    emit: [request],
  };
};

/**
 * Continuous re-optimization: folds executions and recorded scores per program; when quality falls
 * below the policy's threshold, or an alert on its quality series rises, it requests an optimization (one
 * at a time per program, caused by what triggered it), whose winner is adopted only if it beats the
 * current configuration by the margin. A finished optimization opens a fresh window. Everything it reads
 * is a `MetricRecorded` or an `AlertRaised` on dspex.metrics, keyed by program: a
 * program's state lives in one task, whatever the number of instances.
 */
export const reoptimizationProcessor = (
  policies: readonly ReoptimizationPolicy[],
  name = "dspex-reoptimizer",
): Processor<ReoptimizationState> => {
  const byProgram = new Map(policies.map((p) => [p.programId, p]));
  return {
    name,
    topics: [Topics.metrics],
    initialState: { watches: {} },
    handle(state, event, ctx) {
      const none = { state, emit: [] };
      if (event.type !== "MetricRecorded" && event.type !== "AlertRaised") return none;
      const policy = byProgram.get(event.data.programId);
      if (!policy) return none;
      const watch = state.watches[policy.programId] ?? fresh(0);
      if (event.type === "AlertRaised") return answerAlert(state, watch, policy, event, ctx);
      const { name: metric, labels, value } = event.data;
      if (metric === executionMetric) {
        // Evaluations of optimizations are not production traffic.
        if (labels.origin === "evaluation") return none;
        const ok = labels.status === "completed" ? 1 : 0;
        const next = { ...watch, executions: watch.executions + 1, succeeded: watch.succeeded + ok };
        return maybeStart(state, next, policy, event, ctx);
      }
      if (metric === optimizationMetric) {
        if (watch.running !== labels.optimizationId) return none;
        return {
          state: { watches: { ...state.watches, [policy.programId]: fresh(watch.generation + 1) } },
          emit: [],
        };
      }
      if (metric !== policy.metric) return none;
      return maybeStart(
        state,
        { ...watch, scoreSum: watch.scoreSum + value, scores: watch.scores + 1 },
        policy,
        event,
        ctx,
      );
    },
  };
};
