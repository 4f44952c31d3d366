import { z } from "zod";
import { Topics } from "../topics.ts";
import { Id, JsonRecord, StepError, Usage } from "./common.ts";
import { defineEvent } from "./define.ts";

export const StageOutcome = z.object({
  outputs: JsonRecord,
  durationMs: z.number().nonnegative(),
  attempts: z.number().int().positive().default(1),
});

export const ExecutionCompleted = defineEvent("ExecutionCompleted", {
  topic: Topics.results,
  data: z.object({
    requestId: Id,
    executionId: Id,
    programId: Id,
    outputs: JsonRecord,
    stages: z.record(z.string(), StageOutcome),
    durationMs: z.number().nonnegative(),
    usage: Usage,
    evaluationId: Id.optional(),
    exampleId: Id.optional(),
  }),
});

export const ExecutionFailed = defineEvent("ExecutionFailed", {
  topic: Topics.results,
  data: z.object({
    requestId: Id,
    executionId: Id,
    programId: Id,
    failedStage: z.string(),
    error: StepError,
    /** Every completed stage's output: partial results are kept. */
    partial: z.record(z.string(), StageOutcome),
    durationMs: z.number().nonnegative(),
    usage: Usage,
    evaluationId: Id.optional(),
    exampleId: Id.optional(),
  }),
});

export const ExecutionRejected = defineEvent("ExecutionRejected", {
  topic: Topics.results,
  data: z.object({
    requestId: Id,
    programId: z.string().optional(),
    code: z.enum(["invalid", "unknown_program", "saturated"]),
    reason: z.string().min(1),
    evaluationId: Id.optional(),
    exampleId: Id.optional(),
  }),
});

export const ExampleResult = z.object({
  exampleId: Id,
  score: z.number(),
  outputs: JsonRecord.optional(),
  error: z.string().optional(),
});

export const EvaluationCompleted = defineEvent("EvaluationCompleted", {
  topic: Topics.results,
  data: z.object({
    evaluationId: Id,
    programId: Id,
    score: z.number(),
    results: z.array(ExampleResult),
    errors: z.number().int().nonnegative(),
    usage: Usage,
    /** Why the evaluation could not run at all (its request was unreadable); no example ran. */
    error: z.string().min(1).optional(),
  }),
});

export const resultEvents = [
  ExecutionCompleted,
  ExecutionFailed,
  ExecutionRejected,
  EvaluationCompleted,
] as const;
