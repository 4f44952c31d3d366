import { z } from "zod";
import { Topics } from "../topics.ts";
import { Id, JsonRecord, StepError } from "./common.ts";
import { defineEvent } from "./define.ts";

export const ExecutionStarted = defineEvent("ExecutionStarted", {
  topic: Topics.executions,
  data: z.object({
    executionId: Id,
    requestId: Id,
    programId: Id,
    programVersion: z.number().int().positive(),
    sessionId: Id,
    inputs: JsonRecord,
    /** Stage ids grouped by dependency level: every stage of a level can run in parallel. */
    levels: z.array(z.array(z.string())),
  }),
});

export const StageScheduled = defineEvent("StageScheduled", {
  topic: Topics.executions,
  data: z.object({
    executionId: Id,
    stageId: z.string(),
    attempt: z.number().int().nonnegative(),
    /** When the attempt may start: later than now for a retry with backoff. */
    notBefore: z.iso.datetime({ offset: true }).optional(),
  }),
});

export const StageCompleted = defineEvent("StageCompleted", {
  topic: Topics.executions,
  data: z.object({
    executionId: Id,
    stageId: z.string(),
    attempt: z.number().int().nonnegative(),
    outputs: JsonRecord,
    durationMs: z.number().nonnegative(),
  }),
});

export const StageFailed = defineEvent("StageFailed", {
  topic: Topics.executions,
  data: z.object({
    executionId: Id,
    stageId: z.string(),
    attempt: z.number().int().nonnegative(),
    error: StepError,
    willRetry: z.boolean(),
  }),
});

const Circuit = z.object({ circuit: z.string().min(1), reason: z.string().default("") });

export const CircuitOpened = defineEvent("CircuitOpened", { topic: Topics.executions, data: Circuit });
export const CircuitHalfOpened = defineEvent("CircuitHalfOpened", {
  topic: Topics.executions,
  data: Circuit,
});
export const CircuitClosed = defineEvent("CircuitClosed", { topic: Topics.executions, data: Circuit });

export const StepRerouted = defineEvent("StepRerouted", {
  topic: Topics.executions,
  data: z.object({
    executionId: Id,
    stageId: z.string(),
    from: z.string(),
    to: z.string(),
    reason: z.string(),
  }),
});

/** A session with no activity for the pipeline's session TTL: its state may be dropped (a new request revives it). */
export const SessionExpired = defineEvent("SessionExpired", {
  topic: Topics.executions,
  data: z.object({
    sessionId: Id,
    /** When its last request was made. */
    lastActivityAt: z.iso.datetime({ offset: true }),
    /** The time to live it outlived. */
    ttlMs: z.number().int().positive(),
  }),
});

export const executionEvents = [
  ExecutionStarted,
  StageScheduled,
  StageCompleted,
  StageFailed,
  CircuitOpened,
  CircuitHalfOpened,
  CircuitClosed,
  StepRerouted,
  SessionExpired,
] as const;
