/**
 * Successive halving (Jamieson & Talwalkar 2016; the inner loop of Hyperband): every candidate is scored
 * on a few examples, the best 1/eta of them on eta times as many, and so on until the survivors are
 * scored on all of them. The budget a search spends on bad candidates shrinks, so it can draw more.
 */

export interface Racing {
  /** Rungs of the race: 1 scores every candidate on every example (no racing). */
  rungs: number;
  /** How many times fewer candidates, and more examples, each rung has. */
  eta: number;
}

/** Examples a candidate has been scored on once it has finished rung `rung` (of `total` examples). */
export const rungExamples = ({ rungs, eta }: Racing, rung: number, total: number): number =>
  rung >= rungs - 1 ? total : Math.min(total, Math.ceil(total / eta ** (rungs - 1 - rung)));

/** How many of `entrants` candidates go on to the next rung. */
export const survivors = ({ eta }: Racing, entrants: number): number =>
  entrants === 0 ? 0 : Math.max(1, Math.floor(entrants / eta));

/** Candidates per rung when `candidates` enter the first. */
export const rungSizes = (racing: Racing, candidates: number): number[] => {
  const sizes = [candidates];
  for (let rung = 1; rung < racing.rungs; rung++) sizes.push(survivors(racing, sizes[rung - 1]!));
  return sizes;
};

/** Example runs a race costs at most: each rung scores its candidates on the examples the last did not. */
export const raceExampleRuns = (racing: Racing, candidates: number, total: number): number =>
  rungSizes(racing, candidates).reduce(
    (sum, size, rung) =>
      sum +
      size * (rungExamples(racing, rung, total) - (rung === 0 ? 0 : rungExamples(racing, rung - 1, total))),
    0,
  );
