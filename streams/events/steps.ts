import { z } from "zod";
import { Topics } from "../topics.ts";
import { Demo, Id, JsonRecord, LmConfig, SignatureSpec, StepError, Usage } from "./common.ts";
import { defineEvent, describeIssues } from "./define.ts";

/** A command for a Python consumer: run one DSPy module once. */
/**
 * What a Retrieve step searches and with which embeddings: `passages` given inline, or `corpus`, the name of
 * one the consumer registered (`--corpus NAME=FILE`); `embedder` is `dspex/test` (deterministic),
 * `dspex/offline` (the offline model's llama.cpp embeddings) or a LiteLLM embedding model id.
 */
export const RetrieveConfig = z
  .object({
    passages: z.array(z.string()).min(1).optional(),
    corpus: z.string().min(1).optional(),
    embedder: z.string().min(1),
    k: z.number().int().positive().default(3),
  })
  .refine((r) => (r.passages === undefined) !== (r.corpus === undefined), "give either passages or corpus");
export type RetrieveConfig = z.infer<typeof RetrieveConfig>;

/** A Retrieve stage's search from its stage config, or why the config has none. */
export const retrieveConfigOf = (
  config: Readonly<Record<string, unknown>>,
): RetrieveConfig | { error: string } => {
  const { passages, corpus, embedder, k } = config;
  const parsed = RetrieveConfig.safeParse({ passages, corpus, embedder, k });
  return parsed.success
    ? parsed.data
    : {
        error: `a Retrieve stage needs config {passages | corpus, embedder, k?}: ${describeIssues(parsed.error)}`,
      };
};

export const StepDispatched = defineEvent("StepDispatched", {
  topic: Topics.steps,
  data: z.object({
    stepId: Id,
    executionId: Id,
    stageId: z.string(),
    attempt: z.number().int().nonnegative(),
    programId: Id,
    module: z.enum(["Predict", "ChainOfThought", "ReAct", "Retrieve"]),
    signature: SignatureSpec,
    inputs: JsonRecord,
    demos: z.array(Demo).default([]),
    lm: LmConfig,
    /** ReAct only: tool names from the consumer's registry, never code. */
    tools: z.array(z.string()).default([]),
    maxIters: z.number().int().positive().default(5),
    /** Retrieve only: the passages (or a corpus the consumer registered), the embedding model and k. */
    retrieve: RetrieveConfig.optional(),
    /** The registry version of every variable this step used (reproducibility). */
    variableVersions: z.record(z.string(), z.number().int().nonnegative()).default({}),
    sessionKey: z.string().min(1),
    timeoutMs: z.number().int().positive(),
  }),
});

const StepRef = {
  stepId: Id,
  executionId: Id,
  stageId: z.string(),
  attempt: z.number().int().nonnegative(),
  worker: z.string().default(""),
};

export const StepStarted = defineEvent("StepStarted", {
  topic: Topics.stepResults,
  data: z.object(StepRef),
});

export const TraceEntry = z.object({
  predictor: z.string(),
  inputs: JsonRecord,
  outputs: JsonRecord,
});
export type TraceEntry = z.infer<typeof TraceEntry>;

/** One message an LM was sent; a long one keeps its first and last 2,000 characters around a marker. */
export const LmMessage = z.object({ role: z.string(), content: z.string() });
export type LmMessage = z.infer<typeof LmMessage>;

/**
 * One LM call of a step, as the worker's LM recorded it. `messages` and `completion` are absent when the
 * workers keep usage only (`trace.lmCalls: "usage"`) or the step's calls outgrew their budget
 * (docs/decisions.md, "LM call records"); `cost` (USD) is there when LiteLLM knows the model's price.
 */
export const LmCall = z.object({
  model: z.string(),
  messages: z.array(LmMessage).optional(),
  completion: z.string().optional(),
  promptTokens: z.number().int().nonnegative().default(0),
  completionTokens: z.number().int().nonnegative().default(0),
  latencyMs: z.number().nonnegative(),
  cost: z.number().nonnegative().optional(),
});
export type LmCall = z.infer<typeof LmCall>;

export const StepCompleted = defineEvent("StepCompleted", {
  topic: Topics.stepResults,
  data: z.object({
    ...StepRef,
    outputs: JsonRecord,
    usage: Usage,
    latencyMs: z.number().nonnegative(),
    trace: z.array(TraceEntry).default([]),
    lmCalls: z.array(LmCall).default([]),
  }),
});

export const StepFailed = defineEvent("StepFailed", {
  topic: Topics.stepResults,
  data: z.object({
    ...StepRef,
    error: StepError,
    latencyMs: z.number().nonnegative().default(0),
    /** The calls that returned before the step failed. */
    lmCalls: z.array(LmCall).default([]),
  }),
});

export const stepEvents = [StepDispatched, StepStarted, StepCompleted, StepFailed] as const;
