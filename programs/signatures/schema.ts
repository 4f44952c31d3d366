import { z } from "zod";
import type { FieldConstraints, FieldSpec } from "../../streams/events/common.ts";
import type { TypeNode } from "./types.ts";

/** Error texts are relative ("must be a string"); `describeFieldIssues` puts the field path in front. */
const typeError =
  (expected: string) =>
  (issue: { input?: unknown }): string =>
    issue.input === undefined ? "is required" : `must be ${expected}`;

const jsonValue = z.json();

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

type Check = z.core.$ZodCheck<unknown>;

/** Bounds as checks, applied with one `.check()`: each `.min()` or `.max()` would clone the schema again. */
const checked = <S extends z.ZodType>(schema: S, checks: readonly Check[]): S =>
  checks.length === 0 ? schema : (schema.check(...checks) as S);

const numberBounds = (c: FieldConstraints, lower?: number, upper?: number): Check[] => {
  const min = c.min ?? lower;
  const max = c.max ?? upper;
  const range =
    min !== undefined && max !== undefined
      ? `must be between ${min} and ${max}`
      : min !== undefined
        ? `must be at least ${min}`
        : `must be at most ${max}`;
  const checks: Check[] = [];
  if (min !== undefined) checks.push(z.gte(min, { error: range }));
  if (max !== undefined) checks.push(z.lte(max, { error: range }));
  return checks;
};

/** Length bounds: "must be at least 3 characters" (strings), "must have at most 2 items" (lists). */
const lengthBounds = (
  unit: string,
  verb: "be" | "have",
  { min, max, exactly }: { min?: number; max?: number; exactly?: number },
): Check[] => {
  const checks: Check[] = [];
  if (min !== undefined)
    checks.push(z.minLength(min, { error: `must ${verb} at least ${plural(min, unit)}` }));
  if (max !== undefined)
    checks.push(z.maxLength(max, { error: `must ${verb} at most ${plural(max, unit)}` }));
  if (exactly !== undefined)
    checks.push(z.length(exactly, { error: `must ${verb} exactly ${plural(exactly, unit)}` }));
  return checks;
};

/** The zod schema of one value of a type, with the field's constraints. */
export const schemaOfType = (type: TypeNode, c: FieldConstraints = {}): z.ZodType => {
  switch (type.kind) {
    case "str": {
      const checks = lengthBounds("character", "be", { min: c.minLength, max: c.maxLength });
      if (c.pattern !== undefined)
        checks.push(z.regex(new RegExp(c.pattern), { error: `must match /${c.pattern}/` }));
      return checked(z.string({ error: typeError("a string") }), checks);
    }
    case "int":
      return checked(z.int({ error: typeError("an integer") }), numberBounds(c));
    case "float":
      return checked(z.number({ error: typeError("a number") }), numberBounds(c));
    case "probability":
      return checked(
        z.number({ error: typeError("a probability (a number between 0 and 1)") }),
        numberBounds(c, 0, 1),
      );
    case "confidence":
      return checked(z.number({ error: typeError("a confidence (a number ≥ 0)") }), numberBounds(c, 0));
    case "bool":
      return z.boolean({ error: typeError("a boolean") });
    case "embedding":
      return checked(
        z.array(z.number({ error: "must be a number" }), {
          error: typeError("an embedding (a list of numbers)"),
        }),
        lengthBounds("dimension", "have", { min: 1, exactly: c.dimensions }),
      );
    case "list":
      return checked(
        z.array(schemaOfType(type.item), { error: typeError("a list") }),
        lengthBounds("item", "have", { min: c.minItems, max: c.maxItems }),
      );
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

/** What a field's value (and its default) must be: optional fields also take null. */
export const acceptedOf = (field: FieldSpec, type: TypeNode): z.ZodType => {
  const value = schemaOfType(type, field.constraints);
  return field.optional ? value.nullable() : value;
};

/** A field's schema from what it accepts: a default fills an absent value; optional fields may be absent. */
export const schemaOfField = (field: FieldSpec, accepted: z.ZodType): z.ZodType => {
  if (field.default !== undefined) return accepted.default(field.default as never);
  return field.optional ? accepted.optional() : accepted;
};

export const objectSchemaOf = (fields: readonly { name: string; schema: z.ZodType }[], side: string) =>
  z.object(Object.fromEntries(fields.map(({ name, schema }) => [name, schema])), {
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
