import { z } from "zod";
import { Topics } from "../topics.ts";
import { Budget, Id, JsonRecord, OptimizerName } from "./common.ts";
import { defineEvent } from "./define.ts";

/** How an execution treats failures; every field may be left to the program's or the default policy. */
export const ExecutionPolicy = z.object({
  onError: z.enum(["fail-fast", "continue"]).optional(),
  stepTimeoutMs: z.number().int().positive().optional(),
  maxRetries: z.number().int().nonnegative().optional(),
  backoffMs: z.number().int().nonnegative().optional(),
  maxBackoffMs: z.number().int().nonnegative().optional(),
});
export type ExecutionPolicy = z.infer<typeof ExecutionPolicy>;

export const defaultPolicy: Required<ExecutionPolicy> = {
  onError: "fail-fast",
  stepTimeoutMs: 120_000,
  maxRetries: 2,
  backoffMs: 200,
  maxBackoffMs: 10_000,
};

export const ExecutionRequested = defineEvent("ExecutionRequested", {
  topic: Topics.requests,
  data: z.object({
    requestId: Id,
    programId: Id,
    inputs: JsonRecord,
    sessionId: Id.optional(),
    /** Variable values that replace the registry's for this execution only (evaluations, trials). */
    overrides: JsonRecord.default({}),
    policy: ExecutionPolicy.default({}),
    /** Set when the execution belongs to an evaluation. */
    evaluationId: Id.optional(),
    exampleId: Id.optional(),
    /**
     * When the request is of no use any more: if it is still waiting for a free slot then (the pipeline was
     * full), it is rejected as `saturated` instead of started. Without one a request waits as long as it takes.
     */
    deadline: z.iso.datetime({ offset: true }).optional(),
    /**
     * Only these program outputs are wanted: stages none of them needs do not run (an evaluation that
     * grades one field leaves an ungraded, costly stage out). Default: every output.
     */
    outputs: z.array(z.string().min(1)).min(1).optional(),
  }),
});

export const Example = z.object({ id: Id, inputs: JsonRecord, expected: JsonRecord.default({}) });
export type Example = z.infer<typeof Example>;

export const MetricRef = z.object({
  name: z.string().min(1),
  /** Which output field the metric compares with the expected one. */
  field: z.string().min(1).optional(),
  params: JsonRecord.default({}),
});
export type MetricRef = z.infer<typeof MetricRef>;

export const EvaluationRequested = defineEvent("EvaluationRequested", {
  topic: Topics.requests,
  data: z.object({
    evaluationId: Id,
    programId: Id,
    examples: z.array(Example).min(1),
    metric: MetricRef,
    overrides: JsonRecord.default({}),
    concurrency: z.number().int().positive().default(4),
    /** The score a failed example counts for: failures are never left out. */
    failureScore: z.number().default(0),
    /** Only these program outputs are computed for each example (see ExecutionRequested). */
    outputs: z.array(z.string().min(1)).min(1).optional(),
  }),
});

export const OptimizationRequested = defineEvent("OptimizationRequested", {
  topic: Topics.requests,
  data: z.object({
    optimizationId: Id,
    programId: Id,
    /** Default: the program's hint (`.hint({ optimizer })`), else bootstrap. */
    optimizer: OptimizerName.optional(),
    variables: z.array(z.string().min(1)).default([]),
    trainset: z.array(Example).min(1),
    devset: z.array(Example).min(1),
    metric: MetricRef,
    /** What it leaves out: the program's hint. */
    budget: Budget,
    /** Among the requests one optimizer holds, higher first (default: the program's hint, else 0). */
    priority: z.number().int().optional(),
    seed: z.number().int().default(0),
    params: JsonRecord.default({}),
    /** Only these program outputs are computed in its evaluations (see ExecutionRequested). */
    outputs: z.array(z.string().min(1)).min(1).optional(),
  }),
});

export const requestEvents = [ExecutionRequested, EvaluationRequested, OptimizationRequested] as const;
