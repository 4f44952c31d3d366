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
import type { VariableValue } from "../pipeline/planner.ts";
import { type RuntimeOptions, runProcessor } from "../runtime/index.ts";
import { adoptWinner } from "./adopt.ts";
import { type OptimizationResult, type Progress, runOptimization } from "./driver.ts";
import { historyOf, outcomeOf } from "./history.ts";
import { strategyFor } from "./index.ts";
import { holdLeases, leaseOf } from "./leases.ts";
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
          ...(plan.outputs ? { outputs: [...plan.outputs] } : {}),
        },
      }),
    ]);
    const { data } = await completed;
    if (data.error) throw new Error(`evaluation ${plan.evaluationId} could not run: ${data.error}`);
    return outcomeOf(data);
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
  /** How long to wait in line for variables another optimization holds. */
  leaseTimeoutMs?: number;
  /** How long a lease outlives the optimization's last renewal (it renews three times as often). */
  leaseTtlMs?: number;
  evaluationTimeoutMs?: number;
  concurrency?: number;
  /** The request that asked for it: its events and the adoption are caused by it, in its correlation. */
  cause?: { id: string; correlationId: string };
}

/** An AbortSignal that aborts when any of `signals` does. */
const anyOf = (...signals: (AbortSignal | undefined)[]): AbortSignal =>
  AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));

/**
 * Runs (or resumes) an optimization on the log: leases its variables through the registry processor,
 * replays its events, evaluates through the evaluation processor, proposes an accepted winner, and gives
 * the leases back. Leases are renewed while it runs: killed, it loses them after their time to live.
 */
export const optimizeOnLog = async (
  log: EventLog,
  request: EventOf<"OptimizationRequested">["data"],
  options: LogOptimizationOptions = {},
): Promise<OptimizationResult> => {
  const { programs, variables } = await readRegistry(log);
  const program = programs.get(request.programId);
  if (!program) throw new Error(`unknown program "${request.programId}": register it first`);
  const registry = Object.fromEntries(
    [...variables].map(([id, v]) => [id, { value: v.value as VariableValue["value"], version: v.version }]),
  );
  const setup = setupOf(request, program, { concurrency: options.concurrency, registry });
  const own = async () =>
    historyOf(setup.optimizationId, [
      ...(await eventsOf(log, Topics.optimizations)).filter((e) => e.key === setup.optimizationId),
      ...(await eventsOf(log, Topics.results)).filter((e) => e.type === "EvaluationCompleted"),
    ]);
  const done = await own();
  if (done.failed)
    throw new Error(`optimization ${setup.optimizationId} failed before: ${done.failed.reason}`);
  const { leaseId } = leaseOf(setup.optimizationId);
  // Already finished (a request delivered again): its winner landed and its leases were given back.
  if (done.completed && !setup.variables.some((v) => variables.get(v.variableId)?.lease?.leaseId === leaseId))
    return resultOf(done.completed, done.started);
  const leases = holdLeases(log, setup, variables, {
    ttlMs: options.leaseTtlMs,
    timeoutMs: options.leaseTimeoutMs,
    signal: options.signal,
  });
  // Given up waiting: its places in line are given back before the caller hears why.
  await leases.held.catch(async (error) => {
    await leases.end();
    throw error;
  });
  try {
    const result = await runOptimization(setup, {
      strategy: strategyFor(setup.optimizer, request.params),
      evaluator: streamEvaluator(log, { timeoutMs: options.evaluationTimeoutMs }),
      reflector: options.reflector ?? streamReflector(log, { model: reflectionModelOf(setup, program) }),
      history: await own(),
      signal: anyOf(options.signal, leases.lost),
      record: async (events) => {
        await appendEvents(log, events);
      },
      onProgress: options.onProgress,
      correlationId: options.cause?.correlationId,
      causationId: options.cause?.id,
    });
    await adoptWinner(log, setup, result, (await readRegistry(log)).variables, {
      correlationId: options.cause?.correlationId,
    });
    await leases.end();
    return result;
  } catch (error) {
    // Stopped to resume later: the leases are kept (they expire unless it is back in time).
    await leases.end({ keep: options.signal?.aborted === true });
    throw leases.lost.aborted ? leases.lost.reason : error;
  }
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
