import type { JsonRecord } from "../../streams/events/index.ts";
import {
  type Dimension,
  decodePoint,
  encodeOverrides,
  type Point,
  searchSpaceOf,
  uniformPoint,
} from "./search-space.ts";
import {
  constraintBreaches,
  numberParam,
  type OptimizationSetup,
  selectionExamples,
  selectionSize,
} from "./setup.ts";
import type { Strategy } from "./strategy.ts";
import { defaultTpeOptions, type Observation, suggestTpe } from "./tpe.ts";

export interface SearchState {
  space: Dimension[];
  observations: Observation[];
  best?: { overrides: JsonRecord; score: number };
}

/** Draws tried for one proposal before the search gives up on the constraints. */
const maxDraws = 100;

const searchTrials = (setup: OptimizationSetup): number =>
  Math.min(numberParam(setup, "trials", 20), setup.budget.maxTrials ?? Number.POSITIVE_INFINITY);

/** A search that evaluates whole configurations; how a point is chosen is what differs. */
const searchStrategy = (
  name: string,
  suggest: (state: SearchState, setup: OptimizationSetup, random: () => number) => Point,
): Strategy<SearchState> => ({
  name,
  plan: (setup) => {
    const trials = searchTrials(setup);
    return { trials, exampleRuns: trials * selectionSize(setup), extraCalls: 0 };
  },
  init: (setup) => ({ space: searchSpaceOf(setup), observations: [] }),
  propose(state, setup, ctx) {
    if (state.observations.length >= searchTrials(setup)) return undefined;
    // A configuration that breaks a constraint is never tried: draw again (the search ends if none keeps them).
    for (let draw = 0; draw < maxDraws; draw++) {
      const overrides = decodePoint(state.space, suggest(state, setup, ctx.random));
      if (constraintBreaches(setup, overrides).length > 0) continue;
      return { phase: "search", overrides, examples: selectionExamples(setup, overrides).map((e) => e.id) };
    }
    return undefined;
  },
  observe(state, _setup, { trial, outcome }) {
    const observation = { point: encodeOverrides(state.space, trial.overrides), score: outcome.score };
    const better = !state.best || outcome.score > state.best.score;
    return {
      ...state,
      observations: [...state.observations, observation],
      best: better ? { overrides: trial.overrides, score: outcome.score } : state.best,
    };
  },
  best: (state) => state.best,
});

/** Random search over the same space: the baseline every smarter search has to beat. */
export const randomSearch: Strategy<SearchState> = searchStrategy("random", (state, _setup, random) =>
  uniformPoint(state.space, random),
);

/** Bayesian optimization with a TPE surrogate over every variable of the space. */
export const bayesianSearch: Strategy<SearchState> = searchStrategy("bayes", (state, setup, random) =>
  suggestTpe(state.space, state.observations, random, {
    gamma: numberParam(setup, "gamma", defaultTpeOptions.gamma),
    candidates: numberParam(setup, "candidates", defaultTpeOptions.candidates),
    startup: numberParam(setup, "startupTrials", defaultTpeOptions.startup),
    feasible: (point) => constraintBreaches(setup, decodePoint(state.space, point)).length === 0,
  }),
);
