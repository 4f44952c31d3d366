import { jsonEqual } from "../../programs/variables/types.ts";
import type { JsonRecord } from "../../streams/events/index.ts";
import { type Racing, raceExampleRuns, rungExamples, rungSizes, survivors } from "./racing.ts";
import { randomFor, shuffled } from "./random.ts";
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
import type { Proposal, Strategy, TrialResult } from "./strategy.ts";
import { defaultTpeOptions, type Observation, suggestTpe } from "./tpe.ts";

/** A configuration the search drew, and its score on each example it has been scored on so far. */
interface Candidate {
  overrides: JsonRecord;
  /** Its selection examples, in the order the race scores them. */
  order: string[];
  scores: Readonly<Record<string, number>>;
  /** The last rung it finished. */
  rung: number;
}

export interface SearchState {
  space: Dimension[];
  /** With `params.demoPool: "missed"`: whether the pool trial has been scored (the space is built on it). */
  pooled: boolean;
  /** Each candidate's first-rung score (all scored on as many examples): what TPE learns from. */
  observations: Observation[];
  candidates: Candidate[];
}

/** Draws tried for one proposal before the search gives up on the constraints. */
const maxDraws = 100;

/** Candidates drawn: `params.trials`; without racing, at most the budget's trials. */
const candidatesOf = (setup: OptimizationSetup, racing: Racing): number => {
  const trials = numberParam(setup, "trials", 20);
  return racing.rungs > 1 ? trials : Math.min(trials, setup.budget.maxTrials ?? Number.POSITIVE_INFINITY);
};

/** `params.rungs` (1: every candidate scored on every selection example) and `params.eta` (3). */
const racingOf = (setup: OptimizationSetup): Racing => ({
  rungs: Math.max(1, Math.floor(numberParam(setup, "rungs", 1))),
  eta: Math.max(2, numberParam(setup, "eta", 3)),
});

/**
 * `params.demoPool`: "labeled" (the default) draws demos from every training example; "missed" first scores
 * the current configuration on the trainset (one `pool` trial) and draws demos only from the examples it
 * missed (scored below 1) — what the program does not know yet — or from all of them if it missed none.
 */
const poolsMissed = (setup: OptimizationSetup): boolean => setup.params.demoPool === "missed";

const poolTrial = (setup: OptimizationSetup): Proposal => ({
  phase: "pool",
  overrides: {},
  examples: setup.trainset.map((e) => e.id),
});

/** A candidate's selection examples; when racing, in one shuffled order for all (each rung a fair sample). */
const raceOrder = (setup: OptimizationSetup, racing: Racing, overrides: JsonRecord): string[] => {
  const ids = selectionExamples(setup, overrides).map((e) => e.id);
  if (racing.rungs === 1) return ids;
  const all = [...setup.devset, ...setup.trainset].map((e) => e.id);
  const rank = new Map(shuffled(randomFor(setup.seed, "race"), all).map((id, i) => [id, i]));
  return ids.sort((a, b) => rank.get(a)! - rank.get(b)!);
};

const meanOf = (candidate: Candidate, count: number): number => {
  const ids = candidate.order.slice(0, count);
  return ids.reduce((sum, id) => sum + (candidate.scores[id] ?? 0), 0) / Math.max(1, ids.length);
};

const scoredExamples = (candidate: Candidate) => Object.keys(candidate.scores).length;

/**
 * The candidates in each rung of the race so far: all of them in the first, then the best of each rung's
 * (by the mean over that rung's examples; the earlier drawn first on a tie).
 */
const fieldsOf = (state: SearchState, racing: Racing): number[][] => {
  const fields = [state.candidates.map((_, i) => i)];
  for (let rung = 1; rung < racing.rungs; rung++) {
    const entrants = fields[rung - 1]!;
    if (entrants.some((i) => state.candidates[i]!.rung < rung - 1)) break;
    const meanAt = (i: number) => {
      const c = state.candidates[i]!;
      return meanOf(c, rungExamples(racing, rung - 1, c.order.length));
    };
    const ranked = [...entrants].sort((a, b) => meanAt(b) - meanAt(a) || a - b);
    fields.push(ranked.slice(0, survivors(racing, entrants.length)));
  }
  return fields;
};

/** The next rung some candidate has earned and not run yet. */
const nextRace = (state: SearchState, racing: Racing): Proposal | undefined => {
  const fields = fieldsOf(state, racing);
  for (let rung = 1; rung < fields.length; rung++) {
    const waiting = fields[rung]!.find((i) => state.candidates[i]!.rung < rung);
    if (waiting === undefined) continue;
    const candidate = state.candidates[waiting]!;
    const from = rungExamples(racing, rung - 1, candidate.order.length);
    const to = rungExamples(racing, rung, candidate.order.length);
    return {
      phase: `race-${rung}`,
      overrides: candidate.overrides,
      examples: candidate.order.slice(from, to),
    };
  }
  return undefined;
};

const withScores = (candidate: Candidate, outcome: TrialResult["outcome"], rung: number): Candidate => ({
  ...candidate,
  scores: {
    ...candidate.scores,
    ...Object.fromEntries(outcome.results.map((r) => [r.exampleId, r.score])),
  },
  rung,
});

/**
 * A search that evaluates whole configurations; how a point is chosen is what differs. With
 * `params.rungs` > 1 the candidates race (successive halving): each is scored on a first share of its
 * selection examples, and only the best go on to be scored on the rest.
 */
const searchStrategy = (
  name: string,
  suggest: (state: SearchState, setup: OptimizationSetup, random: () => number) => Point,
): Strategy<SearchState> => ({
  name,
  plan: (setup) => {
    const racing = racingOf(setup);
    const candidates = candidatesOf(setup, racing);
    const pool = poolsMissed(setup) ? poolTrial(setup).examples.length : 0;
    return {
      trials: rungSizes(racing, candidates).reduce((a, b) => a + b, 0) + (pool > 0 ? 1 : 0),
      exampleRuns: raceExampleRuns(racing, candidates, selectionSize(setup)) + pool,
      extraCalls: 0,
    };
  },
  init: (setup) => ({
    space: searchSpaceOf(setup),
    pooled: !poolsMissed(setup),
    observations: [],
    candidates: [],
  }),
  propose(state, setup, ctx) {
    if (!state.pooled) return poolTrial(setup);
    const racing = racingOf(setup);
    if (state.candidates.length >= candidatesOf(setup, racing)) return nextRace(state, racing);
    // A configuration that breaks a constraint is never tried: draw again (the search ends if none keeps them).
    for (let draw = 0; draw < maxDraws; draw++) {
      const overrides = decodePoint(state.space, suggest(state, setup, ctx.random));
      if (constraintBreaches(setup, overrides).length > 0) continue;
      const order = raceOrder(setup, racing, overrides);
      return { phase: "search", overrides, examples: order.slice(0, rungExamples(racing, 0, order.length)) };
    }
    return undefined;
  },
  observe(state, setup, { trial, outcome }) {
    if (trial.phase === "pool") {
      const missed = new Set(outcome.results.filter((r) => r.score < 1).map((r) => r.exampleId));
      return { ...state, space: searchSpaceOf(setup, missed), pooled: true };
    }
    const racing = racingOf(setup);
    if (trial.phase === "search") {
      const candidate = withScores(
        { overrides: trial.overrides, order: raceOrder(setup, racing, trial.overrides), scores: {}, rung: 0 },
        outcome,
        0,
      );
      const observation = { point: encodeOverrides(state.space, trial.overrides), score: outcome.score };
      return {
        ...state,
        observations: [...state.observations, observation],
        candidates: [...state.candidates, candidate],
      };
    }
    const rung = Number(trial.phase.slice("race-".length));
    const index = state.candidates.findIndex(
      (c) => c.rung === rung - 1 && jsonEqual(c.overrides, trial.overrides),
    );
    if (index < 0) return state;
    const candidates = [...state.candidates];
    candidates[index] = withScores(candidates[index]!, outcome, rung);
    return { ...state, candidates };
  },
  /** The best of the candidates that got furthest, by their mean over every example they were scored on. */
  best(state) {
    const top = Math.max(-1, ...state.candidates.map((c) => c.rung));
    let best: { overrides: JsonRecord; score: number } | undefined;
    for (const candidate of state.candidates) {
      if (candidate.rung !== top) continue;
      const score = meanOf(candidate, scoredExamples(candidate));
      if (!best || score > best.score) best = { overrides: candidate.overrides, score };
    }
    return best;
  },
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
