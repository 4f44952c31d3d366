import { jsonEqual } from "../../programs/variables/types.ts";
import type { JsonRecord } from "../../streams/events/index.ts";
import { type Random, randomInt } from "./random.ts";
import { demoFor, numberParam, type OptimizationSetup, stringsParam } from "./setup.ts";

/** One axis of the search: a number (normalized to [0, 1] for the surrogate) or a category index. */
export type Dimension =
  | {
      kind: "numeric";
      name: string;
      variableId: string;
      min: number;
      max: number;
      step?: number;
      precision?: number;
    }
  | { kind: "categorical"; name: string; variableId: string; options: readonly unknown[] }
  /** One slot of a demo list: an index into the pool, or `pool.length` for an empty slot. */
  | { kind: "demo-slot"; name: string; variableId: string; slot: number; pool: readonly JsonRecord[] };

/** A point of the space: per dimension, a normalized number in [0, 1] or a category index. */
export type Point = Readonly<Record<string, number>>;

export const categoriesOf = (dimension: Dimension): number =>
  dimension.kind === "categorical"
    ? dimension.options.length
    : dimension.kind === "demo-slot"
      ? dimension.pool.length + 1
      : 0;

/**
 * Labeled demos from the trainset, for one predictor's demo variable: of every training example, or only of
 * `from` (example ids) when it names some.
 */
export const labeledPool = (
  setup: OptimizationSetup,
  variableId: string,
  from?: ReadonlySet<string>,
): JsonRecord[] => {
  const predictor = setup.predictors.find((p) => p.demosVariable === variableId);
  if (!predictor) return [];
  const examples = from && from.size > 0 ? setup.trainset.filter((e) => from.has(e.id)) : setup.trainset;
  return examples.flatMap((e) => {
    const demo = demoFor(predictor, e.inputs, e.expected);
    return demo ? [demo] : [];
  });
};

/**
 * The space an optimization searches: numeric and categorical variables as they are, instructions
 * among `params.instructionCandidates`, demo lists as `params.maxDemos` slots over labeled demos (of the
 * training examples `demoExamples` names, when it names some).
 */
export const searchSpaceOf = (setup: OptimizationSetup, demoExamples?: ReadonlySet<string>): Dimension[] => {
  const dimensions: Dimension[] = [];
  const maxDemos = numberParam(setup, "maxDemos", 4);
  const instructionCandidates = stringsParam(setup, "instructionCandidates");
  for (const { variableId, declaration } of setup.variables) {
    const { spec } = declaration;
    switch (spec.kind) {
      case "float":
        dimensions.push({
          kind: "numeric",
          name: variableId,
          variableId,
          min: spec.min,
          max: spec.max,
          precision: spec.precision,
        });
        break;
      case "integer":
        dimensions.push({
          kind: "numeric",
          name: variableId,
          variableId,
          min: spec.min,
          max: spec.max,
          step: spec.step,
        });
        break;
      case "choice":
      case "module":
        dimensions.push({ kind: "categorical", name: variableId, variableId, options: spec.choices });
        break;
      case "text":
        if (declaration.name === "instructions" && instructionCandidates.length > 0) {
          const options = [
            declaration.initial,
            ...instructionCandidates.filter((c) => c !== declaration.initial),
          ];
          dimensions.push({ kind: "categorical", name: variableId, variableId, options });
        }
        break;
      case "demos": {
        const pool = labeledPool(setup, variableId, demoExamples);
        const slots = Math.min(spec.maxItems, maxDemos, pool.length);
        for (let slot = 0; slot < slots; slot++)
          dimensions.push({ kind: "demo-slot", name: `${variableId}[${slot}]`, variableId, slot, pool });
        break;
      }
      default:
        break;
    }
  }
  return dimensions;
};

const numericValue = (dimension: Extract<Dimension, { kind: "numeric" }>, unit: number): number => {
  const raw = dimension.min + Math.min(1, Math.max(0, unit)) * (dimension.max - dimension.min);
  if (dimension.step !== undefined) {
    const steps = Math.round((raw - dimension.min) / dimension.step);
    return Math.min(dimension.max, dimension.min + steps * dimension.step);
  }
  if (dimension.precision === undefined) return raw;
  const scale = 10 ** dimension.precision;
  return Math.min(dimension.max, Math.max(dimension.min, Math.round(raw * scale) / scale));
};

const unitOf = (dimension: Extract<Dimension, { kind: "numeric" }>, value: number): number =>
  dimension.max === dimension.min ? 0.5 : (value - dimension.min) / (dimension.max - dimension.min);

/** The overrides a point stands for (demo slots become one list, repeats and empty slots left out). */
export const decodePoint = (space: readonly Dimension[], point: Point): JsonRecord => {
  const overrides: Record<string, unknown> = {};
  for (const dimension of space) {
    const at = point[dimension.name] ?? 0;
    switch (dimension.kind) {
      case "numeric":
        overrides[dimension.variableId] = numericValue(dimension, at);
        break;
      case "categorical":
        overrides[dimension.variableId] = dimension.options[at];
        break;
      case "demo-slot": {
        const demos = (overrides[dimension.variableId] ?? []) as JsonRecord[];
        const demo = dimension.pool[at];
        if (demo && !demos.some((d) => jsonEqual(d, demo))) demos.push(demo);
        overrides[dimension.variableId] = demos;
        break;
      }
    }
  }
  return overrides as JsonRecord;
};

/** The point of some overrides (the inverse of decodePoint): how a resumed search re-reads its trials. */
export const encodeOverrides = (space: readonly Dimension[], overrides: JsonRecord): Point => {
  const point: Record<string, number> = {};
  for (const dimension of space) {
    const value = overrides[dimension.variableId];
    switch (dimension.kind) {
      case "numeric":
        point[dimension.name] = typeof value === "number" ? unitOf(dimension, value) : 0.5;
        break;
      case "categorical":
        point[dimension.name] = Math.max(
          0,
          dimension.options.findIndex((o) => jsonEqual(o, value)),
        );
        break;
      case "demo-slot": {
        const demo = Array.isArray(value) ? value[dimension.slot] : undefined;
        const index = dimension.pool.findIndex((d) => jsonEqual(d, demo));
        point[dimension.name] = index < 0 ? dimension.pool.length : index;
        break;
      }
    }
  }
  return point;
};

export const uniformPoint = (space: readonly Dimension[], random: Random): Point =>
  Object.fromEntries(
    space.map((d) => [d.name, d.kind === "numeric" ? random() : randomInt(random, categoriesOf(d))]),
  );
