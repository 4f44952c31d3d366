import { jsonEqual } from "../../programs/variables/types.ts";
import type { Envelope } from "../../streams/envelope.ts";
import {
  EvaluationCompleted,
  type Example,
  type JsonRecord,
  MetricRecorded,
  noUsage,
  OptimizationCompleted,
  OptimizationStarted,
  optimizationMetric,
  TrialEvaluated,
  TrialProposed,
} from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import { type EvaluationOutcome, type Evaluator, meanScore } from "../evaluation/port.ts";
import {
  configOf,
  emptyHistory,
  type OptimizationHistory,
  outcomeOf,
  type RecordedTrial,
  trialEvaluationId,
} from "./history.ts";
import { randomFor, seedOf } from "./random.ts";
import { numberParam, type OptimizationSetup } from "./setup.ts";
import {
  type Plan,
  type Proposal,
  type Reflector,
  type Strategy,
  silentReflector,
  type Trial,
  type TrialResult,
} from "./strategy.ts";

export interface Progress {
  trial: number;
  plannedTrials: number;
  phase: string;
  score: number;
  bestScore: number;
  calls: number;
  plannedCalls: number;
}

export interface RunOptions<S> {
  strategy: Strategy<S>;
  evaluator: Evaluator;
  reflector?: Reflector;
  /** Where the optimization's events go (appended to the log); awaited before the next step. */
  record(events: Envelope[]): Promise<void>;
  /** The events written so far (folded): the run resumes after them. */
  history?: OptimizationHistory;
  onProgress?(progress: Progress): void;
  /** Stops the run between steps (the events written so far let it resume). */
  signal?: AbortSignal;
  /** Links the events to the request that started the optimization. */
  correlationId?: string;
  causationId?: string;
}

/** The id of an optimization's own event ("started", "completed", ...): derived, so a resumed run writes the same. */
export const optimizationEventId = (optimizationId: string, discriminator: string): string =>
  derivedId(`optimization/${optimizationId}`, discriminator);

export interface OptimizationResult {
  optimizationId: string;
  baselineScore: number;
  bestScore: number;
  bestConfig: JsonRecord;
  accepted: boolean;
  trials: number;
  calls: number;
  plannedTrials: number;
  plannedCalls: number;
  /** The dev score of the configuration the search chose, accepted or not. */
  candidateScore: number;
}

/** The promise, or a rejection as soon as the signal aborts (the work itself is left to finish or time out). */
const abortable = <T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> => {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
};

/** Baseline and final evaluations on the devset, around the search; both announced. */
export const announcedBudget = (setup: OptimizationSetup, plan: Plan) => {
  const trials = Math.min(plan.trials, setup.budget.maxTrials ?? Number.POSITIVE_INFINITY);
  const devCalls = 2 * setup.devset.length * setup.callsPerExample;
  const calls = devCalls + plan.exampleRuns * setup.callsPerExample + plan.extraCalls;
  return {
    plannedTrials: trials + 2,
    plannedCalls: Math.min(calls, setup.budget.maxCalls ?? Number.POSITIVE_INFINITY),
  };
};

const examplesById = (setup: OptimizationSetup): ReadonlyMap<string, Example> =>
  new Map([...setup.trainset, ...setup.devset].map((e) => [e.id, e]));

/** The outcome as `EvaluationCompleted` keeps it: what a resumed run would read back. */
const asRecorded = (setup: OptimizationSetup, outcome: EvaluationOutcome) =>
  EvaluationCompleted.data.parse({
    evaluationId: outcome.evaluationId,
    programId: setup.programId,
    score: outcome.score,
    results: outcome.results.map(({ exampleId, score, outputs, error }) => ({
      exampleId,
      score,
      outputs,
      error,
    })),
    errors: outcome.errors,
    usage: outcome.usage,
  });

/** The devset outcome of a configuration, put together from its trials' results, if they cover every dev example. */
export const devOutcomeOf = (
  trials: readonly TrialResult[],
  devIds: readonly string[],
  evaluationId: string,
): EvaluationOutcome | undefined => {
  const byExample = new Map(trials.flatMap((t) => t.outcome.results.map((r) => [r.exampleId, r] as const)));
  const results = devIds.map((e) => byExample.get(e));
  if (results.length === 0 || results.some((r) => r === undefined)) return undefined;
  const found = results as EvaluationOutcome["results"];
  return {
    evaluationId,
    score: meanScore(found),
    results: found,
    errors: found.filter((r) => r.error !== undefined).length,
    usage: noUsage(),
  };
};

/**
 * Runs (or resumes) an optimization: baseline on the devset, the strategy's trials, the winner on the
 * devset, then `OptimizationCompleted`. Every step is an event, written before the next step starts.
 */
export const runOptimization = async <S>(
  setup: OptimizationSetup,
  options: RunOptions<S>,
): Promise<OptimizationResult> => {
  const { strategy, evaluator } = options;
  const id = setup.optimizationId;
  const history = options.history ?? emptyHistory(id);
  const plan = strategy.plan(setup);
  const planned = history.started
    ? { plannedTrials: history.started.plannedTrials, plannedCalls: history.started.plannedCalls }
    : announcedBudget(setup, plan);
  const header = (discriminator: string) => ({
    id: optimizationEventId(id, discriminator),
    stream: `optimization-${id}`,
    key: id,
    correlationId: options.correlationId ?? `optimization-${id}`,
    causationId: options.causationId ?? null,
  });

  if (history.completed) {
    const c = history.completed;
    return { ...c, optimizationId: id, ...planned, candidateScore: c.bestScore };
  }
  if (!history.started) {
    await options.record([
      OptimizationStarted.create({
        ...header("started"),
        data: {
          optimizationId: id,
          programId: setup.programId,
          optimizer: strategy.name,
          variables: setup.variables.map((v) => v.variableId),
          seed: setup.seed,
          ...planned,
        },
      }),
    ]);
  }

  const examples = examplesById(setup);
  const devIds = setup.devset.map((e) => e.id);
  let calls = history.trials.reduce((sum, t) => sum + (t?.calls ?? 0), 0);
  let bestScore = Number.NEGATIVE_INFINITY;

  const scored: TrialResult[] = [];
  /**
   * Evaluates a trial (unless its outcome is already on the log, or `known`: the outcome of the same
   * configuration on the same examples) and writes what is missing.
   */
  const complete = async (
    trial: Trial,
    recorded: RecordedTrial | undefined,
    proposalCalls = 0,
    known?: EvaluationOutcome,
  ) => {
    const pending: Envelope[] = [];
    if (!recorded)
      pending.push(
        TrialProposed.create({
          ...header(`trial/${trial.trial}/proposed`),
          data: { optimizationId: id, trial: trial.trial, config: configOf(trial), seed: trial.seed },
        }),
      );
    if (pending.length > 0) await options.record(pending);
    let outcome = recorded?.outcome ?? known;
    if (!outcome) {
      options.signal?.throwIfAborted();
      const evaluated = await abortable(
        evaluator.evaluate({
          evaluationId: trialEvaluationId(id, trial.trial),
          programId: setup.programId,
          overrides: trial.overrides,
          examples: trial.examples.map((e) => examples.get(e)!),
          metric: setup.metric,
          concurrency: setup.concurrency,
          failureScore: setup.failureScore,
          ...(setup.outputs ? { outputs: setup.outputs } : {}),
        }),
        options.signal,
      );
      const data = asRecorded(setup, evaluated);
      if (!evaluator.recordsResults)
        await options.record([
          EvaluationCompleted.create({
            ...header(`trial/${trial.trial}/evaluation`),
            stream: `evaluation-${data.evaluationId}`,
            key: data.evaluationId,
            data,
          }),
        ]);
      outcome = outcomeOf(data);
    }
    let trialCalls = recorded?.calls;
    if (trialCalls === undefined) {
      trialCalls = (recorded?.outcome || !known ? outcome.usage.calls : 0) + proposalCalls;
      await options.record([
        TrialEvaluated.create({
          ...header(`trial/${trial.trial}/evaluated`),
          data: { optimizationId: id, trial: trial.trial, score: outcome.score, calls: trialCalls },
        }),
      ]);
      calls += trialCalls;
    }
    // The best so far is a dev-set score (the baseline's, the final's): other trials are scored on other
    // examples, often a single one, and are not comparable with it.
    if (trial.phase === "baseline" || trial.phase === "final") bestScore = Math.max(bestScore, outcome.score);
    options.onProgress?.({
      trial: trial.trial,
      phase: trial.phase,
      score: outcome.score,
      bestScore,
      calls,
      ...planned,
    });
    const result: TrialResult = { trial, outcome, calls: trialCalls };
    scored.push(result);
    return result;
  };

  const trialOf = (n: number, proposal: Proposal): Trial => ({
    ...proposal,
    trial: n,
    seed: seedOf(setup.seed, "trial", n),
  });

  const baselineTrial =
    history.trials[0]?.trial ?? trialOf(0, { phase: "baseline", overrides: {}, examples: devIds });
  const baseline = await complete(baselineTrial, history.trials[0]);
  const recordedTrials = history.trials;

  const finalReserve = setup.devset.length * setup.callsPerExample;
  const maxCalls = setup.budget.maxCalls ?? Number.POSITIVE_INFINITY;
  const maxTrials = setup.budget.maxTrials ?? Number.POSITIVE_INFINITY;
  let state = strategy.init(setup);
  let n = 1;
  for (;;) {
    const recorded = recordedTrials[n];
    if (recorded?.trial.phase === "final") break;
    if (recorded) {
      const result = await complete(recorded.trial, recorded);
      state = strategy.observe(state, setup, result);
      n++;
      continue;
    }
    if (n - 1 >= maxTrials) break;
    options.signal?.throwIfAborted();
    // Reflections the strategy asks for come first; each answer is folded into its state.
    let reflectionCalls = 0;
    const context = () => ({ random: randomFor(setup.seed, "trial", n), trial: n });
    let proposal = strategy.propose(state, setup, context());
    for (let k = 0; proposal && "reflect" in proposal; k++) {
      const request = {
        ...proposal.reflect,
        reflectionId: derivedId(`optimization/${id}`, `trial/${n}/reflection/${k}`),
      };
      const reflection =
        calls + reflectionCalls + 1 + finalReserve > maxCalls
          ? { advice: {}, calls: 0 }
          : await abortable((options.reflector ?? silentReflector).reflect(request), options.signal);
      reflectionCalls += reflection.calls;
      state = strategy.reflected ? strategy.reflected(state, setup, reflection) : state;
      proposal = strategy.propose(state, setup, context());
    }
    if (!proposal) break;
    const cost = proposal.examples.length * setup.callsPerExample;
    if (calls + reflectionCalls + cost + finalReserve > maxCalls) break;
    const result = await complete(trialOf(n, proposal), undefined, reflectionCalls);
    state = strategy.observe(state, setup, result);
    n++;
  }

  const best = strategy.best(state, setup);
  const bestConfig = best?.overrides ?? {};
  const finalRecorded = recordedTrials[n];
  // A winner already scored on every dev example (in one trial or over several) is not scored again: the
  // same calls for answers on the log.
  const scoredOnDev = devOutcomeOf(
    scored.filter((r) => jsonEqual(r.trial.overrides, bestConfig)),
    devIds,
    trialEvaluationId(id, n),
  );
  const final = jsonEqual(bestConfig, {})
    ? baseline
    : await complete(
        finalRecorded?.trial ?? trialOf(n, { phase: "final", overrides: bestConfig, examples: devIds }),
        finalRecorded,
        0,
        scoredOnDev,
      );
  const margin = numberParam(setup, "margin", 0);
  const accepted = final !== baseline && final.outcome.score > baseline.outcome.score + margin;
  const trials = final === baseline ? n : n + 1;
  const completed = {
    optimizationId: id,
    programId: setup.programId,
    baselineScore: baseline.outcome.score,
    bestScore: accepted ? final.outcome.score : baseline.outcome.score,
    bestConfig: accepted ? bestConfig : {},
    accepted,
    trials,
    calls,
  };
  await options.record([
    OptimizationCompleted.create({ ...header("completed"), data: completed }),
    // Keyed by program on dspex.metrics, where the re-optimizer watches the program.
    MetricRecorded.create({
      ...header("completed/metric"),
      stream: `metrics-${setup.programId}`,
      key: setup.programId,
      data: {
        programId: setup.programId,
        name: optimizationMetric,
        value: completed.bestScore,
        unit: "score",
        labels: { optimizationId: id, accepted: String(accepted) },
      },
    }),
  ]);
  return { ...completed, ...planned, candidateScore: final.outcome.score };
};
