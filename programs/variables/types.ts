import { VariableSpec } from "../../streams/events/variables.ts";
import { type Random, randomInt } from "./random.ts";

export type Check = { ok: true } | { ok: false; reason: string };

const ok: Check = { ok: true };
const fail = (reason: string): Check => ({ ok: false, reason });

/** The DSPy modules and native ops a `module` variable may choose among, besides LM model ids. */
export const moduleKinds = ["Predict", "ChainOfThought", "ReAct"] as const;
export const nativeOps = ["retrieve", "transform", "template", "validate"] as const;

const shown = (value: unknown): string => {
  // JSON would show NaN and ±Infinity as null, which is not what was given.
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

const list = (values: readonly unknown[]): string => values.map(shown).join(", ");

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

const decimalsOf = (value: number): number => {
  if (Number.isInteger(value)) return 0;
  const [mantissa = "", exponent] = value.toString().split("e");
  const fraction = mantissa.split(".")[1]?.length ?? 0;
  return Math.max(0, fraction - Number(exponent ?? 0));
};

/** Deep equality of JSON values (choices may be objects). */
export const jsonEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Whether `value` is a valid value of the variable `name`; the reason says why not. */
export const validateValue = (name: string, spec: VariableSpec, value: unknown): Check => {
  switch (spec.kind) {
    case "float": {
      if (typeof value !== "number" || !Number.isFinite(value))
        return fail(`${name} must be a number (got ${shown(value)})`);
      if (value < spec.min || value > spec.max)
        return fail(`${name} must be between ${spec.min} and ${spec.max} (got ${value})`);
      if (spec.precision !== undefined && decimalsOf(value) > spec.precision)
        return fail(`${name} must have at most ${plural(spec.precision, "decimal place")} (got ${value})`);
      return ok;
    }
    case "integer": {
      if (typeof value !== "number" || !Number.isInteger(value))
        return fail(`${name} must be an integer (got ${shown(value)})`);
      if (value < spec.min || value > spec.max)
        return fail(`${name} must be between ${spec.min} and ${spec.max} (got ${value})`);
      if ((value - spec.min) % spec.step !== 0)
        return fail(`${name} must be ${spec.min} plus a multiple of ${spec.step} (got ${value})`);
      return ok;
    }
    case "choice":
      if (spec.allowCustom || spec.choices.some((choice) => jsonEqual(choice, value))) return ok;
      return fail(`${name} must be one of ${list(spec.choices)} (got ${shown(value)})`);
    case "module":
      if (typeof value !== "string")
        return fail(`${name} must be a module or model name (got ${shown(value)})`);
      if (!spec.choices.includes(value))
        return fail(`${name} must be one of ${list(spec.choices)} (got ${shown(value)})`);
      return ok;
    case "text":
      if (typeof value !== "string") return fail(`${name} must be a string (got ${shown(value)})`);
      if (value.length > spec.maxLength)
        return fail(`${name} must be at most ${plural(spec.maxLength, "character")} (got ${value.length})`);
      return ok;
    case "demos": {
      if (!Array.isArray(value)) return fail(`${name} must be a list of demos (got ${shown(value)})`);
      if (value.length > spec.maxItems)
        return fail(`${name} must have at most ${plural(spec.maxItems, "demo")} (got ${value.length})`);
      const bad = value.findIndex((demo) => !isRecord(demo));
      if (bad >= 0)
        return fail(`${name}[${bad}] must be an object of field values (got ${shown(value[bad])})`);
      return ok;
    }
    case "composite":
      return ok;
  }
};

/** Whether a spec itself makes sense (a range that isn't empty, choices without repeats). */
export const checkSpec = (name: string, spec: VariableSpec): Check => {
  switch (spec.kind) {
    case "float":
    case "integer":
      if (spec.min > spec.max) return fail(`${name}: min ${spec.min} is greater than max ${spec.max}`);
      return ok;
    case "choice":
    case "module": {
      const repeated = spec.choices.find((c, i) => spec.choices.findIndex((d) => jsonEqual(c, d)) !== i);
      if (repeated !== undefined) return fail(`${name}: choice ${shown(repeated)} is repeated`);
      return ok;
    }
    default:
      return ok;
  }
};

/** Validates the spec and the initial value of a declaration. */
export const checkDeclaration = (name: string, spec: VariableSpec, initial: unknown): Check => {
  const specCheck = checkSpec(name, spec);
  if (!specCheck.ok) return specCheck;
  return spec.kind === "composite" ? ok : validateValue(name, spec, initial);
};

/** How many values a variable can take: Infinity for continuous ones, 1 for the ones not searched. */
export const cardinalityOf = (spec: VariableSpec): number => {
  switch (spec.kind) {
    case "float":
      return spec.precision === undefined
        ? Number.POSITIVE_INFINITY
        : Math.round((spec.max - spec.min) * 10 ** spec.precision) + 1;
    case "integer":
      return Math.floor((spec.max - spec.min) / spec.step) + 1;
    case "choice":
    case "module":
      return spec.choices.length;
    default:
      return 1;
  }
};

/** Whether a search varies this variable (text, demos and composites are set, learned or computed instead). */
export const isSearchable = (spec: VariableSpec): boolean =>
  spec.kind === "float" || spec.kind === "integer" || spec.kind === "choice" || spec.kind === "module";

/** One random value of a searchable variable; others keep `fallback` (their current or initial value). */
export const sampleValue = (spec: VariableSpec, random: Random, fallback: unknown): unknown => {
  switch (spec.kind) {
    case "float": {
      const raw = spec.min + random() * (spec.max - spec.min);
      if (spec.precision === undefined) return raw;
      const scale = 10 ** spec.precision;
      return Math.min(spec.max, Math.max(spec.min, Math.round(raw * scale) / scale));
    }
    case "integer":
      return spec.min + randomInt(random, cardinalityOf(spec)) * spec.step;
    case "choice":
    case "module":
      return spec.choices[randomInt(random, spec.choices.length)];
    default:
      return fallback;
  }
};

/** Accepts the input form (defaults may be left out) and returns the complete wire form. */
export const variableSpec = (spec: import("zod").input<typeof VariableSpec>): VariableSpec =>
  VariableSpec.parse(spec);
