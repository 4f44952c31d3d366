import type { Example, JsonRecord } from "../../streams/events/index.ts";
import {
  mean,
  percentileOf,
  poisson,
  type Random,
  randomFor,
  sample,
  shuffled,
  softmaxSample,
} from "./random.ts";
import { constraintBreaches, numberParam, type OptimizationSetup } from "./setup.ts";
import {
  appendDemo,
  appendRule,
  type Bucket,
  type ProgramConfig,
  ruleRequest,
  type StrategyInput,
  type Trajectory,
} from "./simba-strategies.ts";
import type { Proposal, ReflectionNeed, Strategy } from "./strategy.ts";

/**
 * SIMBA (Stochastic Introspective Mini-Batch Ascent), after DSPy: each step samples a mini-batch,
 * runs it with programs drawn by softmax over their scores at several temperatures, buckets the
 * examples by how much the runs disagree, and builds new programs from the most telling buckets
 * (append a demo, or append a rule an LM draws from the best and worst run); the best programs
 * of each step are finally evaluated on the whole trainset.
 */
export interface SimbaState {
  programs: ProgramConfig[];
  /** Per program: the mini-batch scores it got. */
  scores: number[][];
  /** The best new program of each step (program 0, the start, first). */
  winners: number[];
  step: number;
  phase: "trajectories" | "candidates" | "final";
  trajectories: Trajectory[];
  trajectoryTrials: number;
  candidates: { program: ProgramConfig; scores: number[] }[];
  finals: { program: number; score: number }[];
  /** The reflection LM's answer for the candidate being built (AppendRule), until it is evaluated. */
  advice?: Readonly<Record<string, string>>;
}

export interface SimbaParams {
  bsize: number;
  numCandidates: number;
  maxSteps: number;
  maxDemos: number;
  temperatureForSampling: number;
  temperatureForCandidates: number;
}

export const simbaParams = (setup: OptimizationSetup): SimbaParams => ({
  bsize: Math.min(numberParam(setup, "bsize", 32), setup.trainset.length),
  numCandidates: numberParam(setup, "numCandidates", 6),
  maxSteps: numberParam(setup, "maxSteps", 8),
  maxDemos: numberParam(setup, "maxDemos", 4),
  temperatureForSampling: numberParam(setup, "temperatureForSampling", 0.2),
  temperatureForCandidates: numberParam(setup, "temperatureForCandidates", 0.2),
});

const initialOf = (setup: OptimizationSetup, variableId: string | undefined) =>
  setup.variables.find((v) => v.variableId === variableId)?.declaration.initial;

const startProgram = (setup: OptimizationSetup): ProgramConfig => ({
  demos: Object.fromEntries(
    setup.predictors.map((p) => {
      const initial = initialOf(setup, p.demosVariable);
      return [p.stageId, Array.isArray(initial) ? (initial as JsonRecord[]) : []];
    }),
  ),
  instructions: Object.fromEntries(
    setup.predictors.map((p) => {
      const initial = initialOf(setup, p.instructionsVariable);
      return [p.stageId, typeof initial === "string" ? initial : p.instructions];
    }),
  ),
});

/** The variable overrides that run a program (at a temperature, when the program declares one). */
export const overridesOf = (
  setup: OptimizationSetup,
  program: ProgramConfig,
  temperature?: number,
): JsonRecord => {
  const overrides: Record<string, unknown> = {};
  for (const p of setup.predictors) {
    if (p.demosVariable) overrides[p.demosVariable] = program.demos[p.stageId] ?? [];
    if (p.instructionsVariable)
      overrides[p.instructionsVariable] = program.instructions[p.stageId] ?? p.instructions;
    if (temperature !== undefined && p.temperatureVariable) overrides[p.temperatureVariable] = temperature;
  }
  return overrides as JsonRecord;
};

/** The program some overrides stand for (how a resumed run re-reads a candidate, rules included). */
const programOf = (setup: OptimizationSetup, overrides: JsonRecord): ProgramConfig => {
  const start = startProgram(setup);
  return {
    demos: Object.fromEntries(
      setup.predictors.map((p) => {
        const value = p.demosVariable ? overrides[p.demosVariable] : undefined;
        return [p.stageId, Array.isArray(value) ? (value as JsonRecord[]) : start.demos[p.stageId]!];
      }),
    ),
    instructions: Object.fromEntries(
      setup.predictors.map((p) => {
        const value = p.instructionsVariable ? overrides[p.instructionsVariable] : undefined;
        return [p.stageId, typeof value === "string" ? value : start.instructions[p.stageId]!];
      }),
    ),
  };
};

/**
 * Where the step winners are finally compared: the devset (default: the trainset lent the demos and
 * trajectories, so a program is partly scored on its own demos), or the trainset as DSPy does
 * (`params.finalOn: "train"`).
 */
const finalExamples = (setup: OptimizationSetup): readonly Example[] =>
  setup.params.finalOn === "train" ? setup.trainset : setup.devset;

/** The step's mini-batch: a sliding window over a shuffled trainset, reshuffled when it runs out. */
export const batchOf = (setup: OptimizationSetup, step: number): Example[] => {
  const { bsize } = simbaParams(setup);
  const random = randomFor(setup.seed, "simba", "data");
  let order = shuffled(random, setup.trainset);
  let at = 0;
  for (let s = 0; ; s++) {
    if (at + bsize > order.length) {
      order = shuffled(random, order);
      at = 0;
    }
    if (s === step) return order.slice(at, at + bsize);
    at += bsize;
  }
};

/**
 * One base temperature, then 0.5 + i·0.5/n: as many as candidates, leaving out those the program's
 * constraints forbid (the base always stays: it is the program's own).
 */
export const temperaturesOf = (setup: OptimizationSetup, n: number): number[] => {
  const variable = setup.predictors.find((p) => p.temperatureVariable)?.temperatureVariable;
  const base = initialOf(setup, variable);
  const allowed = (t: number) => !variable || constraintBreaches(setup, { [variable]: t }).length === 0;
  const temperatures = [
    typeof base === "number" ? base : 0,
    ...Array.from({ length: n }, (_, i) => 0.5 + (i * 0.5) / n).filter(allowed),
  ];
  return [...new Set(temperatures)].slice(0, n);
};

const averageScore = (state: SimbaState, program: number) => mean(state.scores[program] ?? []);

/** The best `k` programs by average mini-batch score, with the start program always among them. */
export const topPrograms = (state: SimbaState, k: number): number[] => {
  const ranked = state.programs
    .map((_, i) => i)
    .sort((a, b) => averageScore(state, b) - averageScore(state, a) || a - b)
    .slice(0, k);
  if (!ranked.includes(0)) ranked[ranked.length - 1] = 0;
  return ranked;
};

interface TrajectoryTrial {
  program: number;
  temperature: number;
  examples: string[];
}

/** Who runs which example this step: per temperature and example, a program drawn by softmax. */
const trajectoryPlan = (state: SimbaState, setup: OptimizationSetup): TrajectoryTrial[] => {
  const params = simbaParams(setup);
  const batch = batchOf(setup, state.step);
  const top = topPrograms(state, params.numCandidates);
  const temperatures = temperaturesOf(setup, params.numCandidates);
  const trials: TrajectoryTrial[] = [];
  for (const [model, temperature] of temperatures.entries()) {
    const byProgram = new Map<number, string[]>();
    for (const [index, example] of batch.entries()) {
      const random = randomFor(setup.seed, "simba", state.step, "trajectory", model, index);
      const program = softmaxSample(random, top, params.temperatureForSampling, (p) =>
        averageScore(state, p),
      );
      byProgram.set(program, [...(byProgram.get(program) ?? []), example.id]);
    }
    for (const [program, examples] of [...byProgram].sort((a, b) => a[0] - b[0]))
      trials.push({ program, temperature, examples });
  }
  return trials;
};

/** Examples whose runs disagree most first: by max−min, then max, then max−mean. */
export const bucketsOf = (trajectories: readonly Trajectory[], batch: readonly Example[]): Bucket[] => {
  const buckets = batch.map((example) =>
    trajectories.filter((t) => t.exampleId === example.id).sort((a, b) => b.score - a.score),
  );
  const keyOf = (bucket: Bucket) => {
    const scores = bucket.map((t) => t.score);
    const max = Math.max(...scores);
    return [max - Math.min(...scores), max, max - mean(scores)];
  };
  return buckets
    .map((bucket, index) => ({ bucket, index, key: keyOf(bucket) }))
    .filter((b) => b.bucket.length > 0)
    .sort(
      (a, b) => b.key[0]! - a.key[0]! || b.key[1]! - a.key[1]! || b.key[2]! - a.key[2]! || a.index - b.index,
    )
    .map((b) => b.bucket);
};

/** Drops some demos (Poisson around demos/maxDemos, at least one once full) to make room. */
const dropDemos = (program: ProgramConfig, maxDemos: number, random: Random): ProgramConfig => {
  const count = Math.max(0, ...Object.values(program.demos).map((d) => d.length));
  if (count === 0) return program;
  const drop = Math.min(
    count,
    Math.max(poisson(random, count / Math.max(1, maxDemos)), count >= maxDemos ? 1 : 0),
  );
  const dropped = new Set(
    sample(
      random,
      Array.from({ length: count }, (_, i) => i),
      drop,
    ),
  );
  return {
    ...program,
    demos: Object.fromEntries(
      Object.entries(program.demos).map(([stage, demos]) => [stage, demos.filter((_, i) => !dropped.has(i))]),
    ),
  };
};

const candidateCount = (setup: OptimizationSetup, state: SimbaState) =>
  Math.min(
    simbaParams(setup).numCandidates,
    bucketsOf(state.trajectories, batchOf(setup, state.step)).length,
  );

/**
 * Builds the step's j-th candidate from the j-th bucket and a source program drawn by softmax; with
 * AppendRule, asks for the reflection first (the same draws come again once its advice is in the state).
 */
const buildCandidate = (
  state: SimbaState,
  setup: OptimizationSetup,
  j: number,
): ProgramConfig | ReflectionNeed => {
  const params = simbaParams(setup);
  const batch = batchOf(setup, state.step);
  const bucket = bucketsOf(state.trajectories, batch)[j]!;
  const scores = state.trajectories.map((t) => t.score);
  const random = randomFor(setup.seed, "simba", state.step, "candidate", j);
  const source = softmaxSample(
    random,
    topPrograms(state, params.numCandidates),
    params.temperatureForCandidates,
    (p) => averageScore(state, p),
  );
  const program = dropDemos(state.programs[source]!, params.maxDemos, random);
  const strategies = params.maxDemos > 0 ? ["demo", "rule"] : ["rule"];
  const strategy = strategies[Math.floor(random() * strategies.length)]!;
  const input: StrategyInput = {
    setup,
    bucket,
    example: batch.find((e) => e.id === bucket[0]!.exampleId)!,
    program,
    low: percentileOf(scores, 10),
    high: percentileOf(scores, 90),
  };
  if (strategy === "demo") return appendDemo(input).program;
  const reflect = ruleRequest(input);
  if (!reflect) return program;
  if (!state.advice) return { reflect };
  return appendRule(input, state.advice).program;
};

/** Spread over the step winners: the start, the last, and evenly between (at most numCandidates + 1). */
export const finalists = (state: SimbaState, setup: OptimizationSetup): number[] => {
  const m = state.winners.length - 1;
  const n = simbaParams(setup).numCandidates + 1;
  if (m < 1) return [state.winners[0] ?? 0];
  const picks = Array.from({ length: n }, (_, i) => state.winners[Math.round((i * m) / (n - 1))]!);
  return [...new Set(picks)];
};

const afterStep = (state: SimbaState, setup: OptimizationSetup): SimbaState => {
  const firstNew = state.programs.length;
  const means = state.candidates.map((c) => mean(c.scores));
  const bestIndex = means.indexOf(Math.max(...means));
  const step = state.step + 1;
  return {
    ...state,
    programs: [...state.programs, ...state.candidates.map((c) => c.program)],
    scores: [...state.scores, ...state.candidates.map((c) => c.scores)],
    winners: bestIndex >= 0 ? [...state.winners, firstNew + bestIndex] : state.winners,
    step,
    phase: step >= simbaParams(setup).maxSteps ? "final" : "trajectories",
    trajectories: [],
    trajectoryTrials: 0,
    candidates: [],
  };
};

const scoresInOrder = (
  examples: readonly string[],
  results: readonly { exampleId: string; score: number }[],
) => examples.map((id) => results.find((r) => r.exampleId === id)?.score ?? 0);

export const simba: Strategy<SimbaState> = {
  name: "simba",
  plan(setup) {
    const p = simbaParams(setup);
    const perStep = p.numCandidates * Math.min(p.bsize, p.numCandidates) + p.numCandidates;
    return {
      trials: p.maxSteps * perStep + p.numCandidates + 1,
      exampleRuns:
        p.maxSteps * 2 * p.numCandidates * p.bsize + (p.numCandidates + 1) * finalExamples(setup).length,
      extraCalls: p.maxSteps * p.numCandidates,
    };
  },
  init: (setup) => ({
    programs: [startProgram(setup)],
    scores: [[]],
    winners: [0],
    step: 0,
    phase: simbaParams(setup).maxSteps > 0 ? "trajectories" : "final",
    trajectories: [],
    trajectoryTrials: 0,
    candidates: [],
    finals: [],
  }),
  propose(state, setup): Proposal | ReflectionNeed | undefined {
    switch (state.phase) {
      case "trajectories": {
        const next = trajectoryPlan(state, setup)[state.trajectoryTrials]!;
        return {
          phase: "simba-trajectories",
          overrides: overridesOf(setup, state.programs[next.program]!, next.temperature),
          examples: next.examples,
        };
      }
      case "candidates": {
        const program = buildCandidate(state, setup, state.candidates.length);
        if ("reflect" in program) return program;
        return {
          phase: "simba-candidate",
          overrides: overridesOf(setup, program),
          examples: batchOf(setup, state.step).map((e) => e.id),
        };
      }
      case "final": {
        const program = finalists(state, setup)[state.finals.length];
        if (program === undefined) return undefined;
        return {
          phase: "simba-final",
          overrides: overridesOf(setup, state.programs[program]!),
          examples: finalExamples(setup).map((e) => e.id),
        };
      }
    }
  },
  reflected: (state, _setup, { advice }) => ({ ...state, advice }),
  observe(state, setup, { trial, outcome }) {
    switch (state.phase) {
      case "trajectories": {
        const plan = trajectoryPlan(state, setup);
        const { program, temperature } = plan[state.trajectoryTrials]!;
        const trajectories = outcome.results.map((r) => ({
          exampleId: r.exampleId,
          program,
          temperature,
          score: r.score,
          outputs: r.outputs ?? {},
        }));
        const done = state.trajectoryTrials + 1;
        const next = {
          ...state,
          trajectories: [...state.trajectories, ...trajectories],
          trajectoryTrials: done,
        };
        if (done < plan.length) return next;
        return candidateCount(setup, next) > 0 ? { ...next, phase: "candidates" } : afterStep(next, setup);
      }
      case "candidates": {
        const candidate = {
          program: programOf(setup, trial.overrides),
          scores: scoresInOrder(trial.examples, outcome.results),
        };
        const next = { ...state, candidates: [...state.candidates, candidate], advice: undefined };
        return next.candidates.length < candidateCount(setup, next) ? next : afterStep(next, setup);
      }
      case "final": {
        const program = finalists(state, setup)[state.finals.length]!;
        return { ...state, finals: [...state.finals, { program, score: outcome.score }] };
      }
    }
  },
  best(state, setup) {
    const ranked =
      state.finals.length > 0
        ? [...state.finals].sort((a, b) => b.score - a.score || a.program - b.program)
        : topPrograms(state, 1).map((program) => ({ program, score: averageScore(state, program) }));
    const top = ranked[0];
    return top
      ? { overrides: overridesOf(setup, state.programs[top.program]!), score: top.score }
      : undefined;
  },
};
