import type { JsonRecord, MetricRef } from "../../streams/events/index.ts";

/** Scores a prediction against an example's expected values: 1 is perfect, 0 is wrong. */
export type Metric = (prediction: JsonRecord, expected: JsonRecord, ref: MetricRef) => number;

export class UnknownMetricError extends Error {
  constructor(name: string, known: readonly string[]) {
    super(`unknown metric "${name}" (known: ${known.join(", ")})`);
    this.name = "UnknownMetricError";
  }
}

/** Lower case, no punctuation, no articles, single spaces (SQuAD's normalization, as DSPy does it). */
export const normalizeText = (text: string): string =>
  text
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/[^\p{L}\p{N}\s]/gu, " ")
    .replace(/\b(a|an|the)\b/g, " ")
    .replace(/\s+/g, " ")
    .trim();

const textOf = (value: unknown): string =>
  value === undefined || value === null ? "" : typeof value === "string" ? value : JSON.stringify(value);

/** The field a metric compares: the ref's `field`, else the first expected field. */
export const comparedField = (expected: JsonRecord, ref: MetricRef): string | undefined =>
  ref.field ?? Object.keys(expected)[0];

const compared = (prediction: JsonRecord, expected: JsonRecord, ref: MetricRef) => {
  const field = comparedField(expected, ref);
  return field === undefined
    ? { predicted: undefined, wanted: undefined }
    : { predicted: prediction[field], wanted: expected[field] };
};

/** Expected values may list several acceptable answers. */
const alternatives = (wanted: unknown): unknown[] => (Array.isArray(wanted) ? wanted : [wanted]);

export const exactMatch: Metric = (prediction, expected, ref) => {
  const { predicted, wanted } = compared(prediction, expected, ref);
  const got = normalizeText(textOf(predicted));
  return alternatives(wanted).some((w) => normalizeText(textOf(w)) === got) ? 1 : 0;
};

const tokenF1 = (predicted: string, wanted: string): number => {
  const got = normalizeText(predicted).split(" ").filter(Boolean);
  const want = normalizeText(wanted).split(" ").filter(Boolean);
  if (got.length === 0 || want.length === 0) return got.length === want.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const token of want) counts.set(token, (counts.get(token) ?? 0) + 1);
  let common = 0;
  for (const token of got) {
    const left = counts.get(token) ?? 0;
    if (left > 0) {
      common++;
      counts.set(token, left - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / got.length;
  const recall = common / want.length;
  return (2 * precision * recall) / (precision + recall);
};

export const f1: Metric = (prediction, expected, ref) => {
  const { predicted, wanted } = compared(prediction, expected, ref);
  return Math.max(0, ...alternatives(wanted).map((w) => tokenF1(textOf(predicted), textOf(w))));
};

export const contains: Metric = (prediction, expected, ref) => {
  const { predicted, wanted } = compared(prediction, expected, ref);
  const got = normalizeText(textOf(predicted));
  return alternatives(wanted).some((w) => got.includes(normalizeText(textOf(w)))) ? 1 : 0;
};

const numberOf = (value: unknown): number => {
  if (typeof value === "number") return value;
  const match = /-?\d+(?:[.,]\d+)?(?:e[-+]?\d+)?/i.exec(textOf(value).replaceAll(/(\d),(\d{3})/g, "$1$2"));
  return match ? Number(match[0].replace(",", ".")) : Number.NaN;
};

/** Within `params.tolerance` (absolute, default 1e-6) or `params.relative` (fraction of the expected). */
export const numeric: Metric = (prediction, expected, ref) => {
  const { predicted, wanted } = compared(prediction, expected, ref);
  const absolute = typeof ref.params.tolerance === "number" ? ref.params.tolerance : 1e-6;
  const relative = typeof ref.params.relative === "number" ? ref.params.relative : 0;
  const got = numberOf(predicted);
  return alternatives(wanted).some((w) => {
    const want = numberOf(w);
    return Math.abs(got - want) <= Math.max(absolute, relative * Math.abs(want));
  })
    ? 1
    : 0;
};

export const builtinMetrics: Readonly<Record<string, Metric>> = {
  exact_match: exactMatch,
  f1,
  contains,
  numeric,
};

export interface Judgement {
  score: number;
  /** Why the metric could not score the prediction. */
  error?: string;
}

/** Built-in metrics plus the ones a user registers by name. */
export class MetricRegistry {
  private readonly metrics = new Map<string, Metric>(Object.entries(builtinMetrics));

  register(name: string, metric: Metric): this {
    this.metrics.set(name, metric);
    return this;
  }

  has(name: string): boolean {
    return this.metrics.has(name);
  }

  get(name: string): Metric {
    const metric = this.metrics.get(name);
    if (!metric) throw new UnknownMetricError(name, [...this.metrics.keys()]);
    return metric;
  }

  /** The score of a prediction, clamped to a finite number (a metric that throws scores `failureScore`). */
  score(ref: MetricRef, prediction: JsonRecord, expected: JsonRecord, failureScore = 0): number {
    return this.judge(ref, prediction, expected, failureScore).score;
  }

  /**
   * The score of a prediction and, when the metric threw or gave no finite number, why: the example then
   * scores `failureScore` and its result carries the error, so an evaluation counts it instead of hiding it.
   */
  judge(ref: MetricRef, prediction: JsonRecord, expected: JsonRecord, failureScore = 0): Judgement {
    const metric = this.get(ref.name);
    try {
      const value = metric(prediction, expected, ref);
      const score = Number(value);
      if (Number.isFinite(score)) return { score };
      return {
        score: failureScore,
        error: `metric ${ref.name} gave ${JSON.stringify(value) ?? String(value)}, not a number`,
      };
    } catch (error) {
      return {
        score: failureScore,
        error: `metric ${ref.name} threw: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
  }
}

export const metricRegistry = (extra: Readonly<Record<string, Metric>> = {}): MetricRegistry => {
  const registry = new MetricRegistry();
  for (const [name, metric] of Object.entries(extra)) registry.register(name, metric);
  return registry;
};
