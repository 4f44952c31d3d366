import { z } from "zod";

export const Json: z.ZodType<unknown> = z.json();
export const JsonRecord = z.record(z.string(), z.json());
export type JsonRecord = z.infer<typeof JsonRecord>;

export const Id = z.string().min(1).max(200);

/** Bounds a field's value must keep; which apply depends on the type (see docs/signatures.md). */
export const FieldConstraints = z.object({
  /** str: length in characters. */
  minLength: z.number().int().nonnegative().optional(),
  maxLength: z.number().int().nonnegative().optional(),
  /** str: an ECMAScript/Python-compatible regular expression the whole value must match. */
  pattern: z.string().optional(),
  /** int, float, probability, confidence: inclusive bounds. */
  min: z.number().optional(),
  max: z.number().optional(),
  /** list: item counts. */
  minItems: z.number().int().nonnegative().optional(),
  maxItems: z.number().int().nonnegative().optional(),
  /** embedding: exact number of dimensions. */
  dimensions: z.number().int().positive().optional(),
});
export type FieldConstraints = z.infer<typeof FieldConstraints>;

/**
 * One field of a signature as it travels: the type is a type expression such as `list[str]`,
 * `Literal["a", "b"]` or `probability`; `optional` fields may be absent or null.
 */
export const FieldSpec = z.object({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
  type: z.string().min(1).default("str"),
  description: z.string().optional(),
  optional: z.boolean().default(false),
  default: z.json().optional(),
  constraints: FieldConstraints.optional(),
});
export type FieldSpec = z.infer<typeof FieldSpec>;

/** A parsed signature on the wire: Python builds a dspy.Signature from exactly this. */
export const SignatureSpec = z.object({
  instructions: z.string().default(""),
  inputs: z.array(FieldSpec).min(1),
  outputs: z.array(FieldSpec).min(1),
});
export type SignatureSpec = z.infer<typeof SignatureSpec>;

/** How DSPy formats the prompt and parses the answer (default: the model's own, DSPy's ChatAdapter mostly). */
export const AdapterName = z.enum(["chat", "json"]);
export type AdapterName = z.infer<typeof AdapterName>;

export const LmConfig = z.object({
  model: z.string().min(1),
  temperature: z.number().min(0).max(2).default(0),
  maxTokens: z.number().int().positive().default(512),
  adapter: AdapterName.optional(),
});
export type LmConfig = z.infer<typeof LmConfig>;

/** A few-shot demonstration: input and output field values. */
export const Demo = z.record(z.string(), z.json());
export type Demo = z.infer<typeof Demo>;

export const Usage = z.object({
  calls: z.number().int().nonnegative().default(0),
  promptTokens: z.number().int().nonnegative().default(0),
  completionTokens: z.number().int().nonnegative().default(0),
});
export type Usage = z.infer<typeof Usage>;

/** The usage of work that called no LM. */
export const noUsage = (): Usage => ({ calls: 0, promptTokens: 0, completionTokens: 0 });

export const ErrorKind = z.enum([
  "timeout",
  "rate_limit",
  "parse",
  "lm_error",
  "bad_request",
  "invalid_output",
  "internal",
  "cancelled",
]);
export type ErrorKind = z.infer<typeof ErrorKind>;

export const StepError = z.object({
  kind: ErrorKind,
  message: z.string(),
  retryable: z.boolean(),
});
export type StepError = z.infer<typeof StepError>;

/** The optimizers dspex runs (processors/optimizers). */
export const OptimizerName = z.enum(["bootstrap", "simba", "bayes", "random"]);
export type OptimizerName = z.infer<typeof OptimizerName>;

/** An optimization's budget: at most this many search trials, at most this many LM calls. */
export const Budget = z.object({
  maxTrials: z.number().int().positive().optional(),
  maxCalls: z.number().int().positive().optional(),
});

/**
 * How a program prefers to be optimized: the optimizer and budget an optimization request that names
 * none uses (`dspex optimize`, the re-optimizer), and its priority among the requests an optimizer holds.
 */
export const OptimizationHints = z
  .object({
    optimizer: OptimizerName.optional(),
    budget: Budget.optional(),
    priority: z.number().int().optional(),
  })
  .strict();
export type OptimizationHints = z.infer<typeof OptimizationHints>;
