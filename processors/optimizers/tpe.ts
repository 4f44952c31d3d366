import { type Random, weightedIndex } from "./random.ts";
import { categoriesOf, type Dimension, type Point, uniformPoint } from "./search-space.ts";

/** A point and the score it got (higher is better). */
export interface Observation {
  point: Point;
  score: number;
}

export interface TpeOptions {
  /** Share of observations that count as good. */
  gamma: number;
  /** Candidates drawn from the good density; the one with the best l(x)/g(x) is proposed. */
  candidates: number;
  /** Random points before the surrogate takes over. */
  startup: number;
  /** Whether a point may be proposed (the program's constraints); candidates that may not are passed over. */
  feasible?: (point: Point) => boolean;
}

export const defaultTpeOptions: TpeOptions = { gamma: 0.25, candidates: 24, startup: 5 };

/** A 1-D Parzen estimator on [0, 1]: a Gaussian per observation plus a broad prior. */
interface Parzen {
  mus: number[];
  sigmas: number[];
}

const parzenOf = (values: readonly number[]): Parzen => {
  const mus = [...values, 0.5].sort((a, b) => a - b);
  const minSigma = 1 / Math.min(100, mus.length + 1);
  const sigmas = mus.map((mu, i) => {
    const left = mu - (i > 0 ? mus[i - 1]! : 0);
    const right = (i < mus.length - 1 ? mus[i + 1]! : 1) - mu;
    return Math.min(1, Math.max(minSigma, left, right));
  });
  // The prior keeps a width of the whole range, wherever it sorted to.
  const prior = mus.indexOf(0.5);
  sigmas[prior] = 1;
  return { mus, sigmas };
};

const gaussian = (x: number, mu: number, sigma: number) =>
  Math.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * Math.sqrt(2 * Math.PI));

const parzenDensity = (parzen: Parzen, x: number): number =>
  parzen.mus.reduce((sum, mu, i) => sum + gaussian(x, mu, parzen.sigmas[i]!), 0) / parzen.mus.length;

const normal = (random: Random): number => {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
};

const parzenSample = (parzen: Parzen, random: Random): number => {
  const i = Math.floor(random() * parzen.mus.length);
  for (let attempt = 0; attempt < 20; attempt++) {
    const x = parzen.mus[i]! + parzen.sigmas[i]! * normal(random);
    if (x >= 0 && x <= 1) return x;
  }
  return Math.min(1, Math.max(0, parzen.mus[i]!));
};

/** Category probabilities from counts, with one pseudo-count each (no category is ever ruled out). */
const categoricalOf = (values: readonly number[], categories: number): number[] => {
  const counts = new Array<number>(categories).fill(1);
  for (const v of values) counts[v] = (counts[v] ?? 1) + 1;
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => c / total);
};

type Density = { kind: "numeric"; parzen: Parzen } | { kind: "categorical"; probabilities: number[] };

const densityOf = (dimension: Dimension, points: readonly Point[]): Density => {
  const values = points.map((p) => p[dimension.name] ?? 0);
  return dimension.kind === "numeric"
    ? { kind: "numeric", parzen: parzenOf(values) }
    : { kind: "categorical", probabilities: categoricalOf(values, categoriesOf(dimension)) };
};

const logDensity = (density: Density, value: number): number =>
  Math.log(
    Math.max(
      1e-12,
      density.kind === "numeric" ? parzenDensity(density.parzen, value) : (density.probabilities[value] ?? 0),
    ),
  );

const drawFrom = (density: Density, random: Random): number =>
  density.kind === "numeric"
    ? parzenSample(density.parzen, random)
    : weightedIndex(random, density.probabilities);

/** Splits observations into the best `gamma` share and the rest (ties: earlier first). */
export const splitObservations = (observations: readonly Observation[], gamma: number) => {
  const ranked = observations.map((o, i) => ({ o, i })).sort((a, b) => b.o.score - a.o.score || a.i - b.i);
  const good = Math.max(1, Math.ceil(gamma * observations.length));
  return {
    good: ranked.slice(0, good).map((r) => r.o.point),
    bad: ranked.slice(good).map((r) => r.o.point),
  };
};

/**
 * Tree-structured Parzen Estimator: models p(x | good) and p(x | bad) per dimension and proposes the
 * candidate (drawn from the good model) with the highest ratio — the expected-improvement maximizer.
 */
export const suggestTpe = (
  space: readonly Dimension[],
  observations: readonly Observation[],
  random: Random,
  options: TpeOptions = defaultTpeOptions,
): Point => {
  if (observations.length < options.startup || space.length === 0) return uniformPoint(space, random);
  const { good, bad } = splitObservations(observations, options.gamma);
  const models = space.map((d) => ({ d, l: densityOf(d, good), g: densityOf(d, bad) }));
  let best: { point: Point; ratio: number } | undefined;
  for (let c = 0; c < options.candidates; c++) {
    const point: Record<string, number> = {};
    let ratio = 0;
    for (const { d, l, g } of models) {
      const value = drawFrom(l, random);
      point[d.name] = value;
      ratio += logDensity(l, value) - logDensity(g, value);
    }
    if (options.feasible && !options.feasible(point)) continue;
    if (!best || ratio > best.ratio) best = { point, ratio };
  }
  return best?.point ?? uniformPoint(space, random);
};
