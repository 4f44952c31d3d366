/**
 * The seed of a property test: DSPEX_PROPERTY_SEED replays a run, otherwise a fresh one. It is printed
 * either way, so a counterexample CI found can be replayed here with the same seed.
 */
export const propertySeed = (test: string, env: NodeJS.ProcessEnv = process.env): number => {
  const given = Number(env.DSPEX_PROPERTY_SEED);
  const seed = Number.isInteger(given) ? given : Math.floor(Math.random() * 2 ** 31);
  console.log(`property seed ${seed} for "${test}" (replay: DSPEX_PROPERTY_SEED=${seed})`);
  return seed;
};

/** Counts what a property applied against what it tried, to show it didn't skip its way to green. */
export const appliedCounter = () => {
  let tried = 0;
  let applied = 0;
  return {
    tried: () => tried++,
    applied: () => applied++,
    /** The share applied, printed. */
    share(test: string): number {
      const share = tried === 0 ? 0 : applied / tried;
      console.log(`${test}: ${applied} of ${tried} commands applied (${(share * 100).toFixed(0)} %)`);
      return share;
    },
  };
};
