import type { z } from "zod";
import type { FieldSpec, SignatureSpec } from "../../streams/events/common.ts";
import { type ParsedField, parseSignatureText, parseTypeExpression } from "./parse.ts";
import { acceptedOf, describeFieldIssues, objectSchemaOf, schemaOfField } from "./schema.ts";
import { SignatureSyntaxError } from "./syntax-error.ts";
import type { TypeNode } from "./types.ts";

export type Validation<T = Record<string, unknown>> =
  | { ok: true; value: T }
  | { ok: false; errors: string[]; message: string };

/** A signature ready to use: its wire form, its zod schemas and validators with readable messages. */
export interface Signature {
  spec: SignatureSpec;
  /** Field types, parsed, by field name. */
  types: ReadonlyMap<string, TypeNode>;
  inputs: z.ZodType<Record<string, unknown>>;
  outputs: z.ZodType<Record<string, unknown>>;
  validateInputs(value: unknown): Validation;
  validateOutputs(value: unknown): Validation;
}

const validatorOf =
  (schema: z.ZodType<Record<string, unknown>>) =>
  (value: unknown): Validation => {
    const parsed = schema.safeParse(value);
    if (parsed.success) return { ok: true, value: parsed.data };
    const errors = describeFieldIssues(parsed.error);
    return { ok: false, errors, message: errors.join("; ") };
  };

const build = (
  spec: SignatureSpec,
  inputs: ParsedField[],
  outputs: ParsedField[],
  source?: string,
): Signature => {
  const schemasOf = (fields: ParsedField[]) =>
    fields.map(({ field, type, defaultAt }) => {
      const accepted = acceptedOf(field, type);
      if (field.default !== undefined) {
        const checked = accepted.safeParse(field.default);
        if (!checked.success) {
          const reason = `default of ${field.name} ${describeFieldIssues(checked.error)[0]}`;
          if (source !== undefined && defaultAt !== undefined)
            throw new SignatureSyntaxError(source, defaultAt + 1, reason);
          throw new SignatureSyntaxError(JSON.stringify(field.default), 1, reason);
        }
      }
      return { name: field.name, schema: schemaOfField(field, accepted) };
    });
  const inputSchema = objectSchemaOf(schemasOf(inputs), "inputs") as unknown as z.ZodType<
    Record<string, unknown>
  >;
  const outputSchema = objectSchemaOf(schemasOf(outputs), "outputs") as unknown as z.ZodType<
    Record<string, unknown>
  >;
  return {
    spec,
    types: new Map([...inputs, ...outputs].map(({ field, type }) => [field.name, type])),
    inputs: inputSchema,
    outputs: outputSchema,
    validateInputs: validatorOf(inputSchema),
    validateOutputs: validatorOf(outputSchema),
  };
};

const CACHE_LIMIT = 1024;
const byText = new Map<string, Signature>();
const bySpec = new Map<string, Signature>();

const remember = (cache: Map<string, Signature>, key: string, signature: Signature): Signature => {
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(key, signature);
  return signature;
};

/**
 * Parses `question, context: list[str] -> answer: str(max_length=200)` (see docs/signatures.md).
 * Cached by text: parsing the same signature again costs a map lookup.
 * Throws SignatureSyntaxError with the column and the reason.
 */
export const signature = (text: string, instructions?: string): Signature => {
  const key = instructions === undefined ? text : `${text}\u0000${instructions}`;
  const cached = byText.get(key);
  if (cached) return cached;
  const parsed = parseSignatureText(text, instructions);
  return remember(byText, key, build(parsed.spec, parsed.inputs, parsed.outputs, text));
};

const fieldsOf = (fields: readonly FieldSpec[]): ParsedField[] =>
  fields.map((field) => {
    try {
      const parsed = parseTypeExpression(field.type);
      return { field: { ...field, optional: field.optional || parsed.optional }, type: parsed.type, at: 0 };
    } catch (error) {
      if (error instanceof SignatureSyntaxError)
        throw new SignatureSyntaxError(error.source, error.column, `type of ${field.name}: ${error.reason}`);
      throw error;
    }
  });

/** The same from the wire form (a StepDispatched or ProgramRegistered signature); cached by content. */
export const signatureOf = (spec: SignatureSpec): Signature => {
  const key = JSON.stringify(spec);
  const cached = bySpec.get(key);
  if (cached) return cached;
  return remember(bySpec, key, build(spec, fieldsOf(spec.inputs), fieldsOf(spec.outputs)));
};

/** Validates values against a list of fields alone (a program's inputs). */
export const fieldsSignature = (
  inputs: readonly FieldSpec[],
  outputs: readonly FieldSpec[] = [],
): Signature => signatureOf({ instructions: "", inputs: [...inputs], outputs: [...outputs] });
