import type { JsonRecord, StageDefinition, StepError } from "../../streams/events/index.ts";
import { checkFields } from "../pipeline/signature-check.ts";
import { bm25, corpusOf, cosine } from "./retrieve.ts";
import { missingPlaceholders, renderTemplate } from "./template.ts";
import { builtinTransforms, type Transform } from "./transform.ts";

export type NativeResult = { ok: true; outputs: JsonRecord } | { ok: false; error: StepError };

export type { Transform } from "./transform.ts";

const failure = (kind: StepError["kind"], message: string): NativeResult => ({
  ok: false,
  error: { kind, message, retryable: false },
});

const outputName = (stage: StageDefinition, index = 0) => stage.signature.outputs[index]!.name;

const retrieve = (stage: StageDefinition, inputs: JsonRecord): NativeResult => {
  const query = inputs[String(stage.config.queryField ?? stage.signature.inputs[0]!.name)];
  const k = typeof stage.config.k === "number" ? stage.config.k : 3;
  const corpus = corpusOf(stage.config);
  const method = String(stage.config.method ?? "bm25");
  if (method !== "bm25" && method !== "cosine")
    return failure("bad_request", `retrieve method must be bm25 or cosine, not ${method}`);
  const embedding = Array.isArray(query) && query.every((x) => typeof x === "number");
  if (typeof query !== "string" && !(method === "cosine" && embedding))
    return failure("bad_request", "retrieve needs a text query (or an embedding for cosine)");
  const hits =
    method === "bm25" ? bm25(corpus, String(query), k) : cosine(corpus, query as string | number[], k);
  const outputs: JsonRecord = { [outputName(stage)]: hits.map((h) => h.passage.text) };
  const scores = stage.signature.outputs.find((f) => f.name === "scores");
  if (scores) outputs.scores = hits.map((h) => h.score);
  return { ok: true, outputs };
};

const template = (stage: StageDefinition, inputs: JsonRecord): NativeResult => {
  const text = stage.config.template;
  if (typeof text !== "string")
    return failure("bad_request", `template stage ${stage.id} has no config.template`);
  const missing = missingPlaceholders(text, inputs);
  if (missing.length > 0)
    return failure("bad_request", `template of stage ${stage.id} has no value for ${missing.join(", ")}`);
  return { ok: true, outputs: { [outputName(stage)]: renderTemplate(text, inputs) } };
};

const transform = (
  stage: StageDefinition,
  inputs: JsonRecord,
  transforms: Readonly<Record<string, Transform>>,
): NativeResult => {
  const name = String(stage.config.fn ?? "");
  const fn = transforms[name] ?? builtinTransforms[name];
  if (!fn) return failure("bad_request", `unknown transform ${JSON.stringify(name)} in stage ${stage.id}`);
  try {
    const result = fn(inputs, stage.config);
    const single =
      stage.signature.outputs.length === 1 && !(outputName(stage) in result) && "value" in result;
    return { ok: true, outputs: single ? { [outputName(stage)]: result.value! } : result };
  } catch (error) {
    return failure("internal", `transform ${name} failed: ${(error as Error).message}`);
  }
};

/** Passes its inputs through as outputs when they satisfy the signature's output fields. */
const validate = (stage: StageDefinition, inputs: JsonRecord): NativeResult => {
  const checked = checkFields(stage.signature.outputs, inputs);
  return checked.ok ? { ok: true, outputs: checked.values } : failure("invalid_output", checked.reason);
};

export const nativeOps = ["retrieve", "transform", "template", "validate"] as const;

/** Runs a native stage in-process: pure and deterministic, so it never retries. */
export const runNativeStage = (
  stage: StageDefinition,
  inputs: JsonRecord,
  transforms: Readonly<Record<string, Transform>> = {},
): NativeResult => {
  switch (stage.module) {
    case "retrieve":
      return retrieve(stage, inputs);
    case "template":
      return template(stage, inputs);
    case "transform":
      return transform(stage, inputs, transforms);
    case "validate":
      return validate(stage, inputs);
    default:
      return failure("bad_request", `unknown native op ${stage.module}; known: ${nativeOps.join(", ")}`);
  }
};
