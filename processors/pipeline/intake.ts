import { executionIdOf } from "../../streams/client.ts";
import type { Envelope } from "../../streams/envelope.ts";
import {
  DeadLettered,
  defaultPolicy,
  type EventOf,
  ExecutionRejected,
  ExecutionStarted,
} from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import type { LogRecord, Position } from "../../streams/log.ts";
import { deadLetterContent, looseId, looseObject } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { type ExecutionInit, resultKeyOf } from "./coordinator.ts";
import { breachesWith, stagesFor } from "./planner.ts";
import type { Registry } from "./registry.ts";
import { checkFields } from "./signature-check.ts";

export interface IntakeConfig {
  /**
   * Executions in flight at most, per partition of dspex.requests (a task). A task at the limit takes no
   * more requests from the log until executions finish: they wait there (backpressure).
   */
  maxInFlight: number;
  /** `reject` (the operator's opt-in): a request that finds its task full is rejected as `saturated` at once. */
  whenFull: "wait" | "reject";
}

export { executionIdOf };

export const defaultIntakeConfig: IntakeConfig = { maxInFlight: 1000, whenFull: "wait" };

/** The key of everything about a request's execution: its session, or the request itself. */
export const sessionKeyOf = (request: { requestId: string; sessionId?: string }): string =>
  request.sessionId ?? request.requestId;

export interface IntakeContext {
  now: number;
  /** Where the request was read (for its dead letter). */
  source?: Position;
  /** The consumer group, named in dead letters. */
  consumer?: string;
}

export type IntakeDecision =
  | { kind: "rejected"; emit: Envelope[] }
  | { kind: "started"; emit: Envelope[]; execution: ExecutionInit };

export type Request = EventOf<"ExecutionRequested">;

export const rejection = (
  request: Request,
  ctx: IntakeContext,
  code: "invalid" | "unknown_program" | "saturated",
  reason: string,
) =>
  ExecutionRejected.create({
    id: derivedId(request.id, "rejected"),
    stream: `request-${request.data.requestId}`,
    key: resultKeyOf(request.data),
    occurredAt: new Date(ctx.now).toISOString(),
    correlationId: request.correlationId,
    causationId: request.id,
    data: {
      requestId: request.data.requestId,
      programId: request.data.programId,
      code,
      reason,
      evaluationId: request.data.evaluationId,
      exampleId: request.data.exampleId,
    },
  });

const deadLetter = (request: Request, ctx: IntakeContext, reason: string) =>
  DeadLettered.create({
    id: derivedId(request.id, `dead-letter:${ctx.consumer ?? "intake"}`),
    stream: `dlq-${Topics.requests}`,
    key: request.data.requestId,
    occurredAt: new Date(ctx.now).toISOString(),
    correlationId: request.correlationId,
    causationId: request.id,
    data: {
      source: {
        topic: ctx.source?.topic ?? Topics.requests,
        partition: ctx.source?.partition,
        offset: ctx.source === undefined ? undefined : String(ctx.source.offset),
        consumer: ctx.consumer ?? "intake",
      },
      ...deadLetterContent(reason, request),
    },
  });

/**
 * The answer to a record on dspex.requests that is not a valid event but names an execution request's id:
 * its writer hears why (an ExecutionRejected, `invalid`), besides the dead letter.
 */
export const rejectUnreadable = (record: LogRecord, reason: string): Envelope[] => {
  const envelope = looseObject(record);
  const data = envelope?.data as Record<string, unknown> | undefined;
  const requestId = looseId(data, "requestId");
  if (!requestId || envelope?.type === "EvaluationRequested" || envelope?.type === "OptimizationRequested")
    return [];
  const evaluationId = looseId(data, "evaluationId");
  const at = `${record.topic}/${record.partition}/${record.offset}`;
  return [
    ExecutionRejected.create({
      id: derivedId(at, "rejected"),
      stream: `request-${requestId}`,
      key: resultKeyOf({ requestId, evaluationId }),
      correlationId: looseId(envelope, "correlationId") ?? at,
      data: {
        requestId,
        programId: looseId(data, "programId"),
        code: "invalid",
        reason: `the request is not a valid ExecutionRequested: ${reason}`,
        evaluationId,
        exampleId: looseId(data, "exampleId"),
      },
    }),
  ];
};

/** Accepts a request (→ ExecutionStarted) or rejects it with a reason a caller can act on. */
export const admitRequest = (registry: Registry, request: Request, ctx: IntakeContext): IntakeDecision => {
  const { programId, requestId } = request.data;
  const entry = registry.programs[programId];
  if (!entry) {
    const known = Object.keys(registry.programs).sort().join(", ") || "none";
    const reason = `unknown program ${programId} (registered: ${known})`;
    return { kind: "rejected", emit: [rejection(request, ctx, "unknown_program", reason)] };
  }
  if (entry.problem !== undefined) {
    const reason = `program ${programId} cannot run: ${entry.problem}`;
    return { kind: "rejected", emit: [rejection(request, ctx, "invalid", reason)] };
  }
  const inputs = checkFields(entry.definition.inputs, request.data.inputs);
  if (!inputs.ok) {
    const reason = `invalid inputs for ${programId}: ${inputs.reason}`;
    return {
      kind: "rejected",
      emit: [rejection(request, ctx, "invalid", reason), deadLetter(request, ctx, reason)],
    };
  }
  const wanted = request.data.outputs ? stagesFor(entry.definition, request.data.outputs) : undefined;
  if (wanted && !wanted.ok) {
    const reason = `invalid outputs for ${programId}: ${wanted.reason}`;
    return { kind: "rejected", emit: [rejection(request, ctx, "invalid", reason)] };
  }
  const broken = breachesWith(entry.definition, registry.variables, request.data.overrides);
  if (broken.length > 0) {
    const reason = `the configuration of ${programId} breaks its constraints: ${broken.join("; ")}`;
    return { kind: "rejected", emit: [rejection(request, ctx, "invalid", reason)] };
  }
  const executionId = executionIdOf(requestId);
  const sessionKey = sessionKeyOf(request.data);
  const started = ExecutionStarted.create({
    id: derivedId(request.id, "started"),
    stream: `execution-${executionId}`,
    key: sessionKey,
    occurredAt: new Date(ctx.now).toISOString(),
    correlationId: request.correlationId,
    causationId: request.id,
    data: {
      executionId,
      requestId,
      programId,
      programVersion: entry.definition.version,
      sessionId: sessionKey,
      inputs: inputs.values,
      levels: entry.levels,
    },
  });
  return {
    kind: "started",
    emit: [started],
    execution: {
      executionId,
      requestId,
      program: entry.definition,
      sessionKey,
      inputs: inputs.values,
      overrides: request.data.overrides,
      policy: { ...defaultPolicy, ...stripUndefined(request.data.policy) },
      evaluationId: request.data.evaluationId,
      exampleId: request.data.exampleId,
      correlationId: request.correlationId,
      startedAt: ctx.now,
      ...(wanted?.ok ? { needed: [...wanted.stages] } : {}),
    },
  };
};

const stripUndefined = <T extends object>(value: T): Partial<T> =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
