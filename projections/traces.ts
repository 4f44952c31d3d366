import type { DspexEvent, JsonRecord, LmCall, StepError, Usage } from "../streams/events/index.ts";
import type { Projection } from "./projection.ts";

export type AttemptStatus = "scheduled" | "dispatched" | "running" | "completed" | "failed";

/** One attempt of one stage, as its events tell it: when, where, with what, and what came out. */
export interface AttemptView {
  stageId: string;
  attempt: number;
  status: AttemptStatus;
  scheduledAt?: string;
  /** A retry waits for its backoff until then. */
  notBefore?: string;
  dispatchedAt?: string;
  startedAt?: string;
  endedAt?: string;
  worker?: string;
  module?: string;
  model?: string;
  temperature?: number;
  instructions?: string;
  inputs?: JsonRecord;
  demos?: JsonRecord[];
  variableVersions?: Record<string, number>;
  outputs?: JsonRecord;
  usage?: Usage;
  latencyMs?: number;
  /** What the model saw and said, per call (the workers record it since issue 20). */
  lmCalls?: LmCall[];
  error?: StepError;
  willRetry?: boolean;
  reroutedTo?: string;
}

/** An execution step by step: every stage attempt with its inputs, outputs, LM calls and timings. */
export interface TraceView {
  executionId: string;
  programId?: string;
  sessionId?: string;
  inputs?: JsonRecord;
  levels?: string[][];
  evaluationId?: string;
  exampleId?: string;
  outputs?: JsonRecord;
  /** By `stage#attempt`. */
  attempts: Record<string, AttemptView>;
}

const attemptKey = (stageId: string, attempt: number) => `${stageId}#${attempt}`;

const order: readonly AttemptStatus[] = ["scheduled", "dispatched", "running", "completed", "failed"];

/** An attempt with `change` applied; its status only moves forward (a late StepStarted can't undo a completion). */
const withAttempt = (
  view: TraceView,
  stageId: string,
  attempt: number,
  change: Partial<AttemptView> & { status?: AttemptStatus },
): TraceView => {
  const key = attemptKey(stageId, attempt);
  const known = view.attempts[key] ?? { stageId, attempt, status: "scheduled" as const };
  const status =
    change.status && order.indexOf(change.status) >= order.indexOf(known.status)
      ? change.status
      : known.status;
  return { ...view, attempts: { ...view.attempts, [key]: { ...known, ...change, status } } };
};

/** The calls a step result recorded, if any (trusted decoding leaves older events without the field). */
const lmCallsOf = (data: { lmCalls?: LmCall[] }): LmCall[] | undefined =>
  data.lmCalls && data.lmCalls.length > 0 ? data.lmCalls : undefined;

/** Per execution: each stage attempt's timeline and content (inputs, demos, LM config, outputs, LM calls, errors). */
export const tracesProjection: Projection<TraceView> = {
  name: "traces",
  version: 1,
  types: [
    "ExecutionStarted",
    "StageScheduled",
    "StepDispatched",
    "StepStarted",
    "StepCompleted",
    "StepFailed",
    "StepRerouted",
    "StageCompleted",
    "StageFailed",
    "ExecutionCompleted",
    "ExecutionFailed",
  ],
  keysOf: (event) => ("executionId" in event.data ? [event.data.executionId as string] : []),
  evolve: (entity, event: DspexEvent, key) => {
    const view: TraceView = entity ?? { executionId: key, attempts: {} };
    const at = event.occurredAt;
    switch (event.type) {
      case "ExecutionStarted": {
        const { programId, sessionId, inputs, levels } = event.data;
        return { ...view, programId, sessionId, inputs, levels };
      }
      case "StageScheduled":
        return withAttempt(view, event.data.stageId, event.data.attempt, {
          status: "scheduled",
          scheduledAt: at,
          ...(event.data.notBefore ? { notBefore: event.data.notBefore } : {}),
        });
      case "StepDispatched": {
        const { stageId, attempt, module, lm, inputs, demos, variableVersions, signature } = event.data;
        return withAttempt(view, stageId, attempt, {
          status: "dispatched",
          dispatchedAt: at,
          module,
          model: lm.model,
          temperature: lm.temperature,
          inputs,
          demos,
          variableVersions,
          ...(signature.instructions ? { instructions: signature.instructions } : {}),
        });
      }
      case "StepStarted":
        return withAttempt(view, event.data.stageId, event.data.attempt, {
          status: "running",
          startedAt: at,
          worker: event.data.worker,
        });
      case "StepCompleted": {
        const { stageId, attempt, outputs, usage, latencyMs, worker } = event.data;
        const lmCalls = lmCallsOf(event.data);
        return withAttempt(view, stageId, attempt, {
          status: "running",
          outputs,
          usage,
          latencyMs,
          worker,
          ...(lmCalls ? { lmCalls } : {}),
        });
      }
      case "StepFailed": {
        const { stageId, attempt, error, latencyMs, worker } = event.data;
        const lmCalls = lmCallsOf(event.data);
        return withAttempt(view, stageId, attempt, {
          status: "running",
          error,
          latencyMs,
          worker,
          ...(lmCalls ? { lmCalls } : {}),
        });
      }
      case "StepRerouted": {
        const current = Object.values(view.attempts)
          .filter((a) => a.stageId === event.data.stageId)
          .sort((a, b) => b.attempt - a.attempt)[0];
        return current
          ? withAttempt(view, current.stageId, current.attempt, { reroutedTo: event.data.to })
          : view;
      }
      case "StageCompleted": {
        const { stageId, attempt, outputs, durationMs } = event.data;
        return withAttempt(view, stageId, attempt, {
          status: "completed",
          endedAt: at,
          outputs,
          latencyMs: view.attempts[attemptKey(stageId, attempt)]?.latencyMs ?? durationMs,
        });
      }
      case "StageFailed": {
        const { stageId, attempt, error, willRetry } = event.data;
        return withAttempt(view, stageId, attempt, { status: "failed", endedAt: at, error, willRetry });
      }
      case "ExecutionCompleted":
      case "ExecutionFailed": {
        const { evaluationId, exampleId } = event.data;
        const outputs = event.type === "ExecutionCompleted" ? event.data.outputs : undefined;
        return {
          ...view,
          ...(evaluationId ? { evaluationId } : {}),
          ...(exampleId ? { exampleId } : {}),
          ...(outputs ? { outputs } : {}),
        };
      }
      default:
        return entity;
    }
  },
};

/** The attempts in the order they ran. */
export const attemptsOf = (trace: TraceView): AttemptView[] =>
  Object.values(trace.attempts).sort(
    (a, b) =>
      (a.scheduledAt ?? a.dispatchedAt ?? a.endedAt ?? "").localeCompare(
        b.scheduledAt ?? b.dispatchedAt ?? b.endedAt ?? "",
      ) ||
      a.stageId.localeCompare(b.stageId) ||
      a.attempt - b.attempt,
  );
