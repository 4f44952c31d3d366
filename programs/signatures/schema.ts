import { z } from "zod";
import type { FieldConstraints, FieldSpec } from "../../streams/events/common.ts";
import type { TypeNode } from "./types.ts";

/** Error texts are relative ("must be a string"); `describeFieldIssues` puts the field path in front. */
const typeError =
  (expected: string) =>
  (issue: { input?: unknown }): string =>
    issue.input === undefined ? "is required" : `must be ${expected}`;

const jsonValue = z.json();

const bounded = (schema: z.ZodNumber, c: FieldConstraints, lower?: number, upper?: number): z.ZodNumber => {
  const min = c.min ?? lower;
  const max = c.max ?? upper;
  const range =
    min !== undefined && max !== undefined
      ? `must be between ${min} and ${max}`
      : min !== undefined
        ? `must be at least ${min}`
        : `must be at most ${max}`;
  let out = schema;
  if (min !== undefined) out = out.min(min, { error: range });
  if (max !== undefined) out = out.max(max, { error: range });
  return out;
};

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** The zod schema of one value of a type, with the field's constraints. */
export const schemaOfType = (type: TypeNode, c: FieldConstraints = {}): z.ZodType => {
  switch (type.kind) {
    case "str": {
      let s = z.string({ error: typeError("a string") });
      if (c.minLength !== undefined)
        s = s.min(c.minLength, { error: `must be at least ${plural(c.minLength, "character")}` });
      if (c.maxLength !== undefined)
        s = s.max(c.maxLength, { error: `must be at most ${plural(c.maxLength, "character")}` });
      if (c.pattern !== undefined) s = s.regex(new RegExp(c.pattern), { error: `must match /${c.pattern}/` });
      return s;
    }
    case "int":
      return bounded(z.number({ error: typeError("an integer") }).int({ error: "must be an integer" }), c);
    case "float":
      return bounded(z.number({ error: typeError("a number") }), c);
    case "probability":
      return bounded(z.number({ error: typeError("a probability (a number between 0 and 1)") }), c, 0, 1);
    case "confidence":
      return bounded(z.number({ error: typeError("a confidence (a number ≥ 0)") }), c, 0);
    case "bool":
      return z.boolean({ error: typeError("a boolean") });
    case "embedding": {
      let s = z
        .array(z.number({ error: "must be a number" }), {
          error: typeError("an embedding (a list of numbers)"),
        })
        .min(1, { error: "must have at least 1 dimension" });
      if (c.dimensions !== undefined)
        s = s.length(c.dimensions, { error: `must have exactly ${plural(c.dimensions, "dimension")}` });
      return s;
    }
    case "list": {
      let s = z.array(schemaOfType(type.item), { error: typeError("a list") });
      if (c.minItems !== undefined)
        s = s.min(c.minItems, { error: `must have at least ${plural(c.minItems, "item")}` });
      if (c.maxItems !== undefined)
        s = s.max(c.maxItems, { error: `must have at most ${plural(c.maxItems, "item")}` });
      return s;
    }
    case "dict":
      return z.record(z.string(), type.value ? schemaOfType(type.value) : jsonValue, {
        error: typeError("an object"),
      });
    case "literal": {
      const expected = `one of ${type.values.map((v) => JSON.stringify(v)).join(", ")}`;
      return z.literal(type.values as [z.core.util.Literal, ...z.core.util.Literal[]], {
        error: typeError(expected),
      });
    }
  }
};

/** A field's schema: optional fields also take null; a default fills an absent value. */
export const schemaOfField = (field: FieldSpec, type: TypeNode): z.ZodType => {
  const value = schemaOfType(type, field.constraints);
  if (field.default !== undefined)
    return (field.optional ? value.nullable() : value).default(field.default as never);
  return field.optional ? value.nullable().optional() : value;
};

export const objectSchemaOf = (fields: readonly { field: FieldSpec; type: TypeNode }[], side: string) =>
  z.object(Object.fromEntries(fields.map(({ field, type }) => [field.name, schemaOfField(field, type)])), {
    error: (issue) => (issue.input === undefined ? `${side} are required` : `${side} must be an object`),
  });

const formatPath = (path: readonly PropertyKey[]): string =>
  path.reduce<string>(
    (out, key) => (typeof key === "number" ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)),
    "",
  );

/** `question must be a string`, `tags[1] must be a string`, `inputs must be an object`. */
export const describeFieldIssues = (error: z.ZodError): string[] =>
  error.issues.map((issue) =>
    issue.path.length === 0 ? issue.message : `${formatPath(issue.path)} ${issue.message}`,
  );
