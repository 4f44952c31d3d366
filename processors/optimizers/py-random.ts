/**
 * CPython's `random.Random` (MT19937 with `init_by_array` seeding, `_randbelow` by rejection on
 * `getrandbits`, and the `sample`/`shuffle` algorithms of CPython 3.x), so that dspex's BootstrapFewShot
 * draws exactly what DSPy's does from the same seed: DSPy seeds `random.Random(0)` for the teacher's
 * labeled demos, the validation shuffle and the raw demos.
 */
export interface PyRandom {
  /** A float in [0, 1) with 53 random bits, as `random.random()`. */
  random(): number;
  getrandbits(k: number): number;
  /** An integer in [0, n), as `Random._randbelow`. */
  randbelow(n: number): number;
  /** `k` items without replacement, as `random.sample(population, k)`. */
  sample<T>(population: readonly T[], k: number): T[];
  /** Shuffles a copy, as `random.shuffle` does in place. */
  shuffled<T>(items: readonly T[]): T[];
}

const N = 624;
const M = 397;

/** The 32-bit words of |seed|, least significant first (CPython's `random_seed` for an int). */
const keyOf = (seed: number): number[] => {
  let rest = Math.abs(Math.trunc(seed));
  const key: number[] = [];
  while (rest > 0) {
    key.push(rest % 0x100000000);
    rest = Math.floor(rest / 0x100000000);
  }
  return key.length > 0 ? key : [0];
};

export const pyRandom = (seed: number): PyRandom => {
  const mt = new Uint32Array(N);
  let mti = N + 1;

  const initGenrand = (s: number) => {
    mt[0] = s >>> 0;
    for (mti = 1; mti < N; mti++) {
      const prev = mt[mti - 1]! ^ (mt[mti - 1]! >>> 30);
      mt[mti] = (Math.imul(1812433253, prev) + mti) >>> 0;
    }
  };

  const initByArray = (key: readonly number[]) => {
    initGenrand(19650218);
    let i = 1;
    let j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1664525)) + key[j]! + j) >>> 0;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
  };

  const genrand = (): number => {
    if (mti >= N) {
      let kk = 0;
      const mag = (y: number) => (y & 1 ? 0x9908b0df : 0);
      for (; kk < N - M; kk++) {
        const y = (mt[kk]! & 0x80000000) | (mt[kk + 1]! & 0x7fffffff);
        mt[kk] = mt[kk + M]! ^ (y >>> 1) ^ mag(y);
      }
      for (; kk < N - 1; kk++) {
        const y = (mt[kk]! & 0x80000000) | (mt[kk + 1]! & 0x7fffffff);
        mt[kk] = mt[kk + (M - N)]! ^ (y >>> 1) ^ mag(y);
      }
      const y = (mt[N - 1]! & 0x80000000) | (mt[0]! & 0x7fffffff);
      mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ mag(y);
      mti = 0;
    }
    let y = mt[mti++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  };

  initByArray(keyOf(seed));

  const getrandbits = (k: number): number => {
    if (k <= 0) return 0;
    if (k <= 32) return genrand() >>> (32 - k);
    // Wider draws (populations over 2^32 items) never happen here; words go least significant first.
    let result = 0;
    let scale = 1;
    for (let left = k; left > 0; left -= 32) {
      const word = left >= 32 ? genrand() : genrand() >>> (32 - left);
      result += word * scale;
      scale *= 0x100000000;
    }
    return result;
  };

  const bitLength = (n: number) => (n <= 0 ? 0 : Math.floor(Math.log2(n)) + 1);

  const randbelow = (n: number): number => {
    if (n <= 0) return 0;
    const k = bitLength(n);
    let r = getrandbits(k);
    while (r >= n) r = getrandbits(k);
    return r;
  };

  return {
    random: () => {
      const a = genrand() >>> 5;
      const b = genrand() >>> 6;
      return (a * 67108864 + b) / 9007199254740992;
    },
    getrandbits,
    randbelow,
    sample<T>(population: readonly T[], k: number): T[] {
      const n = population.length;
      if (k < 0 || k > n) throw new RangeError("Sample larger than population or is negative");
      const result: T[] = new Array(k);
      let setsize = 21;
      if (k > 5) setsize += 4 ** Math.ceil(Math.log(k * 3) / Math.log(4));
      if (n <= setsize) {
        const pool = [...population];
        for (let i = 0; i < k; i++) {
          const j = randbelow(n - i);
          result[i] = pool[j]!;
          pool[j] = pool[n - i - 1]!;
        }
      } else {
        const selected = new Set<number>();
        for (let i = 0; i < k; i++) {
          let j = randbelow(n);
          while (selected.has(j)) j = randbelow(n);
          selected.add(j);
          result[i] = population[j]!;
        }
      }
      return result;
    },
    shuffled<T>(items: readonly T[]): T[] {
      const x = [...items];
      for (let i = x.length - 1; i > 0; i--) {
        const j = randbelow(i + 1);
        [x[i], x[j]] = [x[j]!, x[i]!];
      }
      return x;
    },
  };
};
