import { type Random, randomInt, seededRandom } from "../../programs/variables/random.ts";

export type { Random };
export { randomInt };

/** FNV-1a over the parts: a 32-bit seed that names where a random draw happens. */
export const seedOf = (seed: number, ...parts: (string | number)[]): number => {
  let hash = 0x811c9dc5 ^ (seed >>> 0);
  for (const char of `${seed}/${parts.join("/")}`) {
    hash ^= char.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
};

/** A random source for one named place of one run: the same seed and place, the same draws. */
export const randomFor = (seed: number, ...parts: (string | number)[]): Random =>
  seededRandom(seedOf(seed, ...parts));

export const pick = <T>(random: Random, items: readonly T[]): T => items[randomInt(random, items.length)]!;

/** Fisher–Yates on a copy. */
export const shuffled = <T>(random: Random, items: readonly T[]): T[] => {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = randomInt(random, i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
};

/** `count` distinct items, in random order. */
export const sample = <T>(random: Random, items: readonly T[], count: number): T[] =>
  shuffled(random, items).slice(0, Math.max(0, count));

/** A draw from `weights` (not necessarily normalized). */
export const weightedIndex = (random: Random, weights: readonly number[]): number => {
  const total = weights.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return randomInt(random, weights.length);
  let left = random() * total;
  for (const [i, w] of weights.entries()) {
    left -= w;
    if (left < 0) return i;
  }
  return weights.length - 1;
};

/** Picks an item with probability ∝ exp(score / temperature). */
export const softmaxSample = <T>(
  random: Random,
  items: readonly T[],
  temperature: number,
  scoreOf: (item: T) => number,
): T => {
  const scores = items.map(scoreOf);
  const top = Math.max(...scores);
  const weights = scores.map((s) => Math.exp((s - top) / Math.max(temperature, 1e-9)));
  return items[weightedIndex(random, weights)]!;
};

/** Knuth's Poisson sampler (small means only). */
export const poisson = (random: Random, mean: number): number => {
  const limit = Math.exp(-mean);
  let k = 0;
  let p = random();
  while (p > limit) {
    k++;
    p *= random();
  }
  return k;
};

/** Linear-interpolated percentile (NumPy's default). */
export const percentileOf = (values: readonly number[], p: number): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low);
};

export const mean = (values: readonly number[]): number =>
  values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
