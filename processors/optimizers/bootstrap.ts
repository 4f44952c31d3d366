import { jsonEqual } from "../../programs/variables/types.ts";
import type { Example, JsonRecord } from "../../streams/events/index.ts";
import { pyRandom } from "./py-random.ts";
import {
  demoFor,
  numberParam,
  type OptimizationSetup,
  type Predictor,
  selectionExamples,
  selectionSize,
} from "./setup.ts";
import type { Proposal, Strategy } from "./strategy.ts";

/**
 * BootstrapFewShot as DSPy defines it: a teacher (the program with labeled demos) runs on each
 * training example in order, up to `maxRounds` times; traces that pass the metric become demos,
 * until `maxBootstrappedDemos` examples have one; labeled demos of the other examples fill up to
 * `maxLabeledDemos`. Its random draws are CPython's `random.Random(seed)` draws, in DSPy's order, so seed 0
 * picks exactly the demos DSPy's BootstrapFewShot picks (DSPy always seeds 0).
 */
export interface BootstrapState {
  /** Next training example to bootstrap from, and the attempt on it. */
  exampleIndex: number;
  round: number;
  /** Per predictor (stage id): the demos that passed, in order. */
  traces: Readonly<Record<string, JsonRecord[]>>;
  bootstrapped: readonly string[];
}

interface BootstrapParams {
  maxBootstrappedDemos: number;
  maxLabeledDemos: number;
  maxRounds: number;
  /** A trace passes when the metric reaches this. */
  threshold: number;
}

const paramsOf = (setup: OptimizationSetup): BootstrapParams => ({
  maxBootstrappedDemos: numberParam(setup, "maxBootstrappedDemos", 4),
  maxLabeledDemos: numberParam(setup, "maxLabeledDemos", 16),
  maxRounds: numberParam(setup, "maxRounds", 1),
  threshold: numberParam(setup, "metricThreshold", 1),
});

const labeledDemo = (predictor: Predictor, example: Example) =>
  demoFor(predictor, example.inputs, example.expected);

const demosOfPredictors = (setup: OptimizationSetup) => setup.predictors.filter((p) => p.demosVariable);

/** The teacher's labeled demos per predictor (LabeledFewShot: one `random.Random(seed)` drawing for each in turn). */
const teacherDemos = (setup: OptimizationSetup, params: BootstrapParams): Map<string, Example[]> => {
  const random = pyRandom(setup.seed);
  const k = Math.min(params.maxLabeledDemos, setup.trainset.length);
  return new Map(
    demosOfPredictors(setup).map((p) => [p.stageId, k > 0 ? random.sample(setup.trainset, k) : []]),
  );
};

/** The teacher's overrides for one example: its labeled demos without that example. */
const teacherOverrides = (
  setup: OptimizationSetup,
  params: BootstrapParams,
  without: Example,
  round: number,
) => {
  const labeled = teacherDemos(setup, params);
  const overrides: Record<string, unknown> = {};
  for (const predictor of demosOfPredictors(setup)) {
    const own = labeledDemo(predictor, without);
    // DSPy drops the demos equal to the example (`x != example`).
    overrides[predictor.demosVariable!] = labeled.get(predictor.stageId)!.flatMap((e) => {
      const demo = labeledDemo(predictor, e);
      return demo && !(own && jsonEqual(demo, own)) ? [demo] : [];
    });
    // A fresh rollout at temperature 1.0 on later rounds, as DSPy does.
    if (round > 0 && predictor.temperatureVariable) overrides[predictor.temperatureVariable] = 1.0;
  }
  return overrides as JsonRecord;
};

const maxItemsOf = (setup: OptimizationSetup, variableId: string): number => {
  const spec = setup.variables.find((v) => v.variableId === variableId)?.declaration.spec;
  return spec?.kind === "demos" ? spec.maxItems : Number.POSITIVE_INFINITY;
};

const finished = (state: BootstrapState, setup: OptimizationSetup, params: BootstrapParams) =>
  state.bootstrapped.length >= params.maxBootstrappedDemos || state.exampleIndex >= setup.trainset.length;

export const bootstrapFewShot: Strategy<BootstrapState> = {
  name: "bootstrap",
  plan(setup) {
    const params = paramsOf(setup);
    const trials = setup.trainset.length * params.maxRounds;
    return { trials, exampleRuns: trials, extraCalls: 0 };
  },
  init: () => ({ exampleIndex: 0, round: 0, traces: {}, bootstrapped: [] }),
  propose(state, setup): Proposal | undefined {
    const params = paramsOf(setup);
    if (finished(state, setup, params) || demosOfPredictors(setup).length === 0) return undefined;
    const example = setup.trainset[state.exampleIndex]!;
    return {
      phase: "bootstrap",
      overrides: teacherOverrides(setup, params, example, state.round),
      examples: [example.id],
    };
  },
  observe(state, setup, { outcome }) {
    const params = paramsOf(setup);
    const example = setup.trainset[state.exampleIndex]!;
    const result = outcome.results[0];
    const passed = result !== undefined && result.error === undefined && result.score >= params.threshold;
    if (!passed) {
      const nextRound = state.round + 1;
      return nextRound >= params.maxRounds
        ? { ...state, exampleIndex: state.exampleIndex + 1, round: 0 }
        : { ...state, round: nextRound };
    }
    const traces = { ...state.traces };
    for (const predictor of demosOfPredictors(setup)) {
      const demo = demoFor(predictor, example.inputs, result.outputs ?? {});
      if (demo) traces[predictor.stageId] = [...(traces[predictor.stageId] ?? []), demo];
    }
    return {
      exampleIndex: state.exampleIndex + 1,
      round: 0,
      traces,
      bootstrapped: [...state.bootstrapped, example.id],
    };
  },
  best(state, setup) {
    const params = paramsOf(setup);
    // DSPy: the examples not bootstrapped, shuffled by one Random(seed); raw demos drawn by another.
    const validation = pyRandom(setup.seed).shuffled(
      setup.trainset.filter((e) => !state.bootstrapped.includes(e.id)),
    );
    const random = pyRandom(setup.seed);
    let raw = validation;
    const overrides: Record<string, unknown> = {};
    for (const predictor of demosOfPredictors(setup)) {
      const augmented = (state.traces[predictor.stageId] ?? []).slice(0, params.maxBootstrappedDemos);
      const size = Math.max(0, Math.min(params.maxLabeledDemos - augmented.length, raw.length));
      raw = random.sample(raw, size);
      const labeled = raw.flatMap((e) => {
        const demo = labeledDemo(predictor, e);
        return demo ? [demo] : [];
      });
      const demos = [...augmented, ...labeled].slice(0, maxItemsOf(setup, predictor.demosVariable!));
      if (demos.length > 0) overrides[predictor.demosVariable!] = demos;
    }
    return Object.keys(overrides).length > 0
      ? { overrides: overrides as JsonRecord, score: Number.NaN }
      : undefined;
  },
};

/** Candidate i bootstraps with its own seed; after the first, over a shuffled trainset (DSPy's random search). */
const candidateSetup = (setup: OptimizationSetup, candidate: number): OptimizationSetup =>
  candidate === 0
    ? setup
    : {
        ...setup,
        seed: setup.seed + candidate,
        trainset: pyRandom(setup.seed + candidate).shuffled([...setup.trainset]),
      };

export interface CandidatesState {
  candidate: number;
  inner: BootstrapState;
  /** The candidate waiting for its dev-set score, once its bootstrap finished. */
  pending?: JsonRecord;
  scored: readonly { overrides: JsonRecord; score: number }[];
}

const candidatesOf = (setup: OptimizationSetup) => Math.max(1, numberParam(setup, "candidates", 1));

/**
 * BootstrapFewShot `params.candidates` times, with other seeds and training orders, each candidate's demos
 * scored on its selection examples (the devset unless `params.searchOn` says otherwise) and the best kept —
 * DSPy's BootstrapFewShotWithRandomSearch without its zero-shot and labeled-only candidates (the baseline
 * and the adoption margin stand for those).
 */
export const bootstrapCandidates: Strategy<CandidatesState> = {
  name: "bootstrap",
  plan(setup) {
    const candidates = candidatesOf(setup);
    const inner = bootstrapFewShot.plan(setup);
    return {
      trials: candidates * (inner.trials + 1),
      exampleRuns: candidates * (inner.exampleRuns + selectionSize(setup)),
      extraCalls: 0,
    };
  },
  init: (setup) => ({ candidate: 0, inner: bootstrapFewShot.init(setup), scored: [] }),
  propose(state, setup, ctx) {
    if (state.candidate >= candidatesOf(setup)) return undefined;
    if (state.pending)
      return {
        phase: "candidate",
        overrides: state.pending,
        examples: selectionExamples(setup, state.pending).map((e) => e.id),
      };
    return bootstrapFewShot.propose(state.inner, candidateSetup(setup, state.candidate), ctx);
  },
  observe(state, setup, result) {
    const fresh = bootstrapFewShot.init(setup);
    if (state.pending) {
      const scored = [...state.scored, { overrides: state.pending, score: result.outcome.score }];
      return { candidate: state.candidate + 1, inner: fresh, scored };
    }
    const own = candidateSetup(setup, state.candidate);
    const inner = bootstrapFewShot.observe(state.inner, own, result);
    if (!finished(inner, own, paramsOf(own))) return { ...state, inner };
    const demos = bootstrapFewShot.best(inner, own);
    // A candidate with no demos is the baseline: nothing to score.
    return demos
      ? { ...state, inner, pending: demos.overrides }
      : { candidate: state.candidate + 1, inner: fresh, scored: state.scored };
  },
  best: (state) =>
    state.scored.reduce<{ overrides: JsonRecord; score: number } | undefined>(
      (best, c) => (!best || c.score > best.score ? c : best),
      undefined,
    ),
};
