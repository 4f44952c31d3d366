import { filter, firstValueFrom, map, timeout } from "rxjs";
import { readRegistry } from "../../programs/register.ts";

export { readRegistry };

import { decodeRecord, Headers } from "../../streams/codec.ts";
import {
  type DspexEvent,
  EvaluationRequested,
  type EventOf,
  type ProgramDefinition,
} from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import type { EventLog } from "../../streams/log.ts";
import { appendEvents, readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { evaluationProcessor } from "../evaluation/evaluation.ts";
import { type MetricRegistry, metricRegistry } from "../evaluation/metrics.ts";
import type { Evaluator } from "../evaluation/port.ts";
import { type RuntimeOptions, runProcessor } from "../runtime.ts";
import { adoptWinner, claimVariables, holdsLeases, leaseOf } from "./adopt.ts";
import { type OptimizationResult, type Progress, runOptimization } from "./driver.ts";
import { historyOf, outcomeOf } from "./history.ts";
import { type OptimizerName, strategyFor } from "./index.ts";
import { streamReflector } from "./reflect.ts";
import { setupOf } from "./setup.ts";
import type { Reflector } from "./strategy.ts";

const eventsOf = async (log: EventLog, topic: string): Promise<DspexEvent[]> =>
  (await readEvents(log, topic)).flatMap((r) => ("event" in r ? [r.event] : []));

/** Evaluations through the log: `EvaluationRequested` out, the evaluation processor's `EvaluationCompleted` back. */
export const streamEvaluator = (log: EventLog, options: { timeoutMs?: number } = {}): Evaluator => ({
  recordsResults: true,
  async evaluate(plan) {
    const completed = firstValueFrom(
      log.tail([Topics.results], { from: "beginning" }).pipe(
        filter((r) => r.key === plan.evaluationId && r.headers[Headers.type] === "EvaluationCompleted"),
        map((r) => decodeRecord(r)),
        filter((d) => d.ok),
        map((d) => (d as { ok: true; event: EventOf<"EvaluationCompleted"> }).event),
        timeout({ first: options.timeoutMs ?? 600_000 }),
      ),
    );
    completed.catch(() => undefined);
    await appendEvents(log, [
      EvaluationRequested.create({
        id: derivedId(`evaluation/${plan.evaluationId}`, "requested"),
        stream: `evaluation-${plan.evaluationId}`,
        key: plan.evaluationId,
        data: {
          evaluationId: plan.evaluationId,
          programId: plan.programId,
          examples: [...plan.examples],
          metric: plan.metric,
          overrides: plan.overrides,
          concurrency: plan.concurrency,
          failureScore: plan.failureScore,
        },
      }),
    ]);
    return outcomeOf((await completed).data);
  },
});

export const startEvaluations = (
  log: EventLog,
  metrics: MetricRegistry = metricRegistry(),
  runtime?: RuntimeOptions,
) => runProcessor(log, evaluationProcessor(metrics), runtime);

export interface LogOptimizationOptions {
  /** SIMBA's reflection LM (default: the reflection program on the log, run by the workers). */
  reflector?: Reflector;
  /** Stops the run between steps; its events let it resume. */
  signal?: AbortSignal;
  onProgress?(progress: Progress): void;
  /** How long to wait for another optimizer to release a variable. */
  leaseTimeoutMs?: number;
  evaluationTimeoutMs?: number;
  concurrency?: number;
}

const waitForLeases = async (
  log: EventLog,
  setup: ReturnType<typeof setupOf>,
  timeoutMs: number,
  signal?: AbortSignal,
) => {
  const until = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    if (holdsLeases((await readRegistry(log)).variables, setup)) return;
    if (Date.now() > until)
      throw new Error(`optimization ${setup.optimizationId}: another optimizer holds its variables`);
    await new Promise((r) => setTimeout(r, 200));
  }
};

/**
 * Runs (or resumes) an optimization on the log: leases its variables, replays its events, evaluates
 * through the evaluation processor, lands an accepted winner as `VariableChanged`, releases the leases.
 */
export const optimizeOnLog = async (
  log: EventLog,
  request: EventOf<"OptimizationRequested">["data"],
  options: LogOptimizationOptions = {},
): Promise<OptimizationResult> => {
  const { programs, variables } = await readRegistry(log);
  const program = programs.get(request.programId);
  if (!program) throw new Error(`unknown program "${request.programId}": register it first`);
  const setup = setupOf(request, program, { concurrency: options.concurrency });
  const own = async () =>
    historyOf(setup.optimizationId, [
      ...(await eventsOf(log, Topics.optimizations)).filter((e) => e.key === setup.optimizationId),
      ...(await eventsOf(log, Topics.results)).filter((e) => e.type === "EvaluationCompleted"),
    ]);
  const done = await own();
  // Already finished (a request delivered again): its winner landed and its leases were released.
  if (
    done.completed &&
    !setup.variables.some(
      (v) => variables.get(v.variableId)?.lease?.leaseId === leaseOf(setup.optimizationId).leaseId,
    )
  )
    return resultOf(done.completed, done.started);
  const claims = claimVariables(variables, setup);
  if (claims.length > 0) await appendEvents(log, claims);
  await waitForLeases(log, setup, options.leaseTimeoutMs ?? 60_000, options.signal);

  const result = await runOptimization(setup, {
    strategy: strategyFor(request.optimizer as OptimizerName),
    evaluator: streamEvaluator(log, { timeoutMs: options.evaluationTimeoutMs }),
    reflector: options.reflector ?? streamReflector(log, { model: reflectionModelOf(setup, program) }),
    history: await own(),
    signal: options.signal,
    record: async (events) => {
      await appendEvents(log, events);
    },
    onProgress: options.onProgress,
  });
  const adopted = adoptWinner((await readRegistry(log)).variables, setup, result);
  if (adopted.length > 0) await appendEvents(log, adopted);
  return result;
};

/** SIMBA's reflection LM: `params.reflectionModel`, else the model of the program's first DSPy stage. */
const reflectionModelOf = (setup: ReturnType<typeof setupOf>, program: ProgramDefinition): string => {
  const named = setup.params.reflectionModel;
  if (typeof named === "string" && named) return named;
  const model = program.stages.find((s) => s.runtime === "dspy")?.config.model;
  return typeof model === "string" ? model : "dspex/test";
};

const resultOf = (
  completed: EventOf<"OptimizationCompleted">["data"],
  started: EventOf<"OptimizationStarted">["data"] | undefined,
): OptimizationResult => ({
  ...completed,
  plannedTrials: started?.plannedTrials ?? completed.trials,
  plannedCalls: started?.plannedCalls ?? completed.calls,
  candidateScore: completed.bestScore,
});
