import type { FieldSpec, JsonRecord } from "../../streams/events/index.ts";

/**
 * Checks values against signature fields. The one seam to switch over to `programs/` signatures
 * (zod validators from the signature parser) once they land.
 */
export type FieldCheck = { ok: true; values: JsonRecord } | { ok: false; reason: string };

const describe = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "a list" : typeof value;

const splitTopLevel = (text: string): string[] => {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const char of text) {
    if (char === "[") depth++;
    if (char === "]") depth--;
    if (char === "," && depth === 0) {
      parts.push(current.trim());
      current = "";
    } else current += char;
  }
  if (current.trim()) parts.push(current.trim());
  return parts;
};

/** Why `value` does not have the type expression `type`, or undefined when it does. */
export const typeProblem = (path: string, type: string, value: unknown): string | undefined => {
  const t = type.trim();
  const optional = /^Optional\[(.*)\]$/.exec(t);
  if (optional) return value === null ? undefined : typeProblem(path, optional[1]!, value);
  const list = /^list\[(.*)\]$/.exec(t);
  if (list || t === "list") {
    if (!Array.isArray(value)) return `${path} must be a list, not ${describe(value)}`;
    if (!list) return undefined;
    for (const [i, item] of value.entries()) {
      const problem = typeProblem(`${path}[${i}]`, list[1]!, item);
      if (problem) return problem;
    }
    return undefined;
  }
  const literal = /^Literal\[(.*)\]$/.exec(t);
  if (literal) {
    const allowed = splitTopLevel(literal[1]!).map((choice) => JSON.parse(choice.replaceAll("'", '"')));
    return allowed.includes(value)
      ? undefined
      : `${path} must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`;
  }
  switch (t) {
    case "str":
      return typeof value === "string" ? undefined : `${path} must be a string, not ${describe(value)}`;
    case "int":
      return Number.isInteger(value) ? undefined : `${path} must be an integer, not ${describe(value)}`;
    case "float":
      return typeof value === "number" ? undefined : `${path} must be a number, not ${describe(value)}`;
    case "bool":
      return typeof value === "boolean" ? undefined : `${path} must be a boolean, not ${describe(value)}`;
    case "dict":
      return typeof value === "object" && value !== null && !Array.isArray(value)
        ? undefined
        : `${path} must be an object, not ${describe(value)}`;
    case "probability":
      return typeof value === "number" && value >= 0 && value <= 1
        ? undefined
        : `${path} must be a probability between 0 and 1`;
    case "confidence":
      return typeof value === "number" && value >= 0 ? undefined : `${path} must be a number ≥ 0`;
    case "embedding":
      return Array.isArray(value) && value.every((x) => typeof x === "number")
        ? undefined
        : `${path} must be an embedding (a list of numbers)`;
    default:
      return undefined;
  }
};

/** Picks the signature's fields out of `values`, applying defaults; fails with the first problem. */
export const checkFields = (fields: readonly FieldSpec[], values: JsonRecord): FieldCheck => {
  const checked: JsonRecord = {};
  for (const field of fields) {
    const value = values[field.name];
    if (value === undefined || value === null) {
      if (field.default !== undefined) checked[field.name] = field.default;
      else if (!field.optional) return { ok: false, reason: `${field.name} is required` };
      continue;
    }
    const problem = typeProblem(field.name, field.type, value);
    if (problem) return { ok: false, reason: problem };
    checked[field.name] = value;
  }
  return { ok: true, values: checked };
};
