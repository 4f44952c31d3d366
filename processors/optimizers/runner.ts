import { filter, firstValueFrom, map } from "rxjs";
import { untilAvailable } from "../../streams/availability.ts";
import { decodeRecord } from "../../streams/codec.ts";
import { causedBy } from "../../streams/envelope.ts";
import {
  type DspexEvent,
  type EventOf,
  OptimizationFailed,
  OptimizationRequested,
} from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import {
  type EventLog,
  isTransientError,
  type LogRecord,
  type Position,
  type TopicPartition,
} from "../../streams/log.ts";
import { appendEvents, consumeEvents, looseId, looseObject } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { commitIfOwned, createOffsetTracker } from "../workers/step-runner.ts";
import { type OptimizationResult, optimizationEventId, type Progress } from "./driver.ts";
import { type LogOptimizationOptions, optimizeOnLog, readRegistry } from "./stream.ts";

export interface OptimizerOptions extends Omit<LogOptimizationOptions, "onProgress" | "signal"> {
  /** The consumer group (one runner of a group takes each request). */
  group?: string;
  /** Optimizations run at once (those on the same variables still take turns: leases). */
  maxConcurrent?: number;
  onProgress?(optimizationId: string, progress: Progress): void;
  onResult?(result: OptimizationResult): void;
  /** An optimization that could not run (unknown program, lease timeout...); default: logged. */
  onError?(optimizationId: string, error: Error): void;
  /** Told which partitions of dspex.requests this runner holds after each change. */
  onTasks?(tasks: readonly number[], change: { taken: readonly number[]; given: readonly number[] }): void;
}

export interface RunningOptimizer {
  done: Promise<void>;
  /** Stops taking requests and interrupts the optimizations in flight; they resume on the next start. */
  stop(): Promise<void>;
}

type Request = EventOf<"OptimizationRequested">;

/**
 * The optimizer as a stream consumer: each `OptimizationRequested` on the log (from `dspex optimize`, a
 * client, or the re-optimization processor) runs as `optimizeOnLog` does, trials as events, the winner
 * as `VariableChanged` when it beats the current configuration by the request's margin. A request's
 * offset is committed only once its optimization finished, so after a crash it is delivered again and
 * the optimization resumes from its events (one that already finished is not run again). Several runners
 * share the group: a partition taken from one stops its optimizations there, and they resume where the
 * partition goes. A runner with `maxConcurrent` running stops taking requests (they wait on the log).
 */
export const startOptimizer = (log: EventLog, options: OptimizerOptions = {}): RunningOptimizer => {
  const group = options.group ?? "dspex-optimizer";
  const maxConcurrent = Math.max(1, options.maxConcurrent ?? 2);
  const stopping = new AbortController();
  const offsets = createOffsetTracker();
  /** Optimizations running, with the partition their request came from. */
  const running = new Map<
    string,
    { task: Promise<void>; position: Position; partition: TopicPartition; abort: AbortController }
  >();
  /** Requests taken while full, oldest first, with their priority. */
  const waiting: { position: Position; request: Request; priority: number }[] = [];
  let held: TopicPartition[] = [];
  let pausedNow = false;

  const fullness = () => {
    const full = running.size + waiting.length >= maxConcurrent;
    if (full === pausedNow) return;
    pausedNow = full;
    if (full) consumer.pause(held);
    else consumer.resume(held);
  };

  const run = async (position: Position, request: Request) => {
    const id = request.data.optimizationId;
    const abort = new AbortController();
    const partition = { topic: position.topic, partition: position.partition };
    const signal = AbortSignal.any([stopping.signal, abort.signal]);
    const task = (async () => {
      try {
        // The log unreachable a while: the optimization resumes from its events once it is back.
        const result = await untilAvailable(
          () =>
            optimizeOnLog(log, request.data, {
              ...options,
              cause: request,
              signal,
              onProgress: (progress) => options.onProgress?.(id, progress),
            }),
          isTransientError,
          { signal, maxWaitMs: 10_000 },
        );
        options.onResult?.(result);
      } catch (error) {
        if (signal.aborted) return; // not committed: it resumes where it goes
        // Whoever asked hears why, on the log.
        await untilAvailable(
          () => appendEvents(log, [optimizationFailed(request, (error as Error).message)]),
          isTransientError,
          { signal },
        );
        if (options.onError) options.onError(id, error as Error);
        else console.error(`dspex optimizer: optimization ${id} failed: ${(error as Error).message}`);
      }
      await commitIfOwned(log, group, offsets.finished(position), signal);
    })().finally(() => {
      running.delete(id);
      startWaiting();
      fullness();
    });
    running.set(id, { task, position, partition, abort });
  };

  const startWaiting = () => {
    while (waiting.length > 0 && running.size < maxConcurrent && !stopping.signal.aborted) {
      // Higher priority first; among equals, the oldest.
      const top = waiting.reduce((best, w, i) => (w.priority > waiting[best]!.priority ? i : best), 0);
      const next = waiting.splice(top, 1)[0]!;
      void run(next.position, next.request);
    }
  };

  /** Where the request of an optimization running or waiting here was read, if it is in hand. */
  const inHand = (optimizationId: string): Position | undefined =>
    running.get(optimizationId)?.position ??
    waiting.find((w) => w.request.data.optimizationId === optimizationId)?.position;

  const consumer = consumeEvents(
    log,
    {
      group,
      topics: [Topics.requests],
      autoCommit: false,
      maxBatch: 64,
      deadLetters: [],
      onAssigned: (partitions) => {
        held = [...held, ...partitions];
        if (pausedNow) consumer.pause(partitions);
        options.onTasks?.(
          held.map((tp) => tp.partition),
          { taken: partitions.map((tp) => tp.partition), given: [] },
        );
      },
      onRevoked: (partitions) => {
        const gone = new Set(partitions.map((tp) => `${tp.topic}/${tp.partition}`));
        held = held.filter((tp) => !gone.has(`${tp.topic}/${tp.partition}`));
        for (const { partition, abort } of running.values())
          if (gone.has(`${partition.topic}/${partition.partition}`))
            abort.abort(new Error("partition moved"));
        for (let i = waiting.length - 1; i >= 0; i--) {
          const { position } = waiting[i]!;
          if (gone.has(`${position.topic}/${position.partition}`)) waiting.splice(i, 1);
        }
        offsets.forget(partitions);
        options.onTasks?.(
          held.map((tp) => tp.partition),
          { taken: [], given: partitions.map((tp) => tp.partition) },
        );
      },
    },
    async (batch) => {
      const passed = new Map<string, Position>();
      const refusals = batch.unreadable.flatMap(({ record, reason }) => refuseUnreadable(record, reason));
      if (refusals.length > 0) await appendEvents(log, refusals);
      for (const { record, event } of batch.events) {
        offsets.started(record);
        // The same record again (refetched after a rebalance that left the partition here): the
        // optimization in hand commits it when it ends.
        if (event.type === "OptimizationRequested" && samePosition(inHand(event.data.optimizationId), record))
          continue;
        const taken =
          event.type === "OptimizationRequested" &&
          !inHand(event.data.optimizationId) &&
          !stopping.signal.aborted;
        if (!taken) {
          const at = offsets.finished(record);
          if (at && !stopping.signal.aborted) passed.set(`${at.topic}/${at.partition}`, at);
          continue;
        }
        waiting.push({ position: record, request: event, priority: 0 });
      }
      if (waiting.length > 1) await prioritize(waiting, log);
      startWaiting();
      fullness();
      if (passed.size > 0)
        await untilAvailable(() => log.commit(group, [...passed.values()]), isTransientError, {
          signal: stopping.signal,
        });
    },
  );

  return {
    done: consumer.done,
    async stop() {
      stopping.abort(new Error("optimizer stopped"));
      await consumer.stop();
      await Promise.allSettled([...running.values()].map((r) => r.task));
    },
  };
};

/** Each waiting request's priority: its own, else its program's hint, else 0. */
const prioritize = async (waiting: { request: Request; priority: number }[], log: EventLog) => {
  // The registry is read only when a request leaves its priority to its program's hint.
  const hinted = waiting.some((w) => w.request.data.priority === undefined);
  const programs = hinted ? (await readRegistry(log)).programs : undefined;
  for (const w of waiting)
    w.priority = w.request.data.priority ?? programs?.get(w.request.data.programId)?.hints?.priority ?? 0;
};

/** The answer to a request whose optimization could not run or finish (its id derives from the optimization's). */
const optimizationFailed = (request: Request, reason: string) =>
  OptimizationFailed.create({
    id: optimizationEventId(request.data.optimizationId, "failed"),
    stream: `optimization-${request.data.optimizationId}`,
    key: request.data.optimizationId,
    ...causedBy(request),
    data: { optimizationId: request.data.optimizationId, programId: request.data.programId, reason },
  });

const samePosition = (a: Position | undefined, b: Position) =>
  a !== undefined && a.topic === b.topic && a.partition === b.partition && a.offset === b.offset;

/** The answer to an unreadable record on dspex.requests that names an optimization: why it cannot run. */
const refuseUnreadable = (record: LogRecord, reason: string) => {
  const envelope = looseObject(record);
  const data = envelope?.data as Record<string, unknown> | undefined;
  const optimizationId = looseId(data, "optimizationId");
  if (!optimizationId || envelope?.type !== "OptimizationRequested") return [];
  return [
    OptimizationFailed.create({
      id: optimizationEventId(optimizationId, "failed"),
      stream: `optimization-${optimizationId}`,
      key: optimizationId,
      correlationId: looseId(envelope, "correlationId") ?? `optimization-${optimizationId}`,
      data: {
        optimizationId,
        programId: looseId(data, "programId") ?? "unknown",
        reason: `the request is not a valid OptimizationRequested: ${reason}`,
      },
    }),
  ];
};

/** The request event of an optimization (its id derives from the optimization's: publishing twice is harmless). */
export const optimizationRequested = (data: EventOf<"OptimizationRequested">["data"]) =>
  OptimizationRequested.create({
    id: derivedId(data.optimizationId, "requested"),
    stream: `optimization-${data.optimizationId}`,
    key: data.optimizationId,
    data: OptimizationRequested.data.parse(data),
  });

/**
 * Follows an optimization on the log, whoever runs it: progress from its trials as they are evaluated (the
 * best score is a dev-set score: the baseline's or the final's), its result once completed; rejects with
 * the reason when it failed. Subscribed from the beginning: an optimization that already ended answers at once.
 */
export const followOptimization = (
  log: EventLog,
  optimizationId: string,
  onProgress?: (progress: Progress) => void,
): Promise<OptimizationResult> => {
  let planned = { plannedTrials: 0, plannedCalls: 0 };
  const phases = new Map<number, string>();
  let calls = 0;
  let bestScore = Number.NEGATIVE_INFINITY;
  let finalScore: number | undefined;
  return firstValueFrom(
    log.tail([Topics.optimizations], { from: "beginning" }).pipe(
      filter((record) => record.key === optimizationId),
      map((record) => decodeRecord(record)),
      filter((decoded): decoded is { ok: true; event: DspexEvent } => decoded.ok),
      map(({ event }): OptimizationResult | undefined => {
        switch (event.type) {
          case "OptimizationStarted":
            planned = { plannedTrials: event.data.plannedTrials, plannedCalls: event.data.plannedCalls };
            return undefined;
          case "TrialProposed":
            phases.set(event.data.trial, String(event.data.config.phase ?? "search"));
            return undefined;
          case "TrialEvaluated": {
            const phase = phases.get(event.data.trial) ?? "search";
            calls += event.data.calls;
            if (phase === "baseline" || phase === "final") bestScore = Math.max(bestScore, event.data.score);
            if (phase === "final") finalScore = event.data.score;
            onProgress?.({
              trial: event.data.trial,
              phase,
              score: event.data.score,
              bestScore,
              calls,
              ...planned,
            });
            return undefined;
          }
          case "OptimizationCompleted":
            return { ...event.data, ...planned, candidateScore: finalScore ?? event.data.baselineScore };
          case "OptimizationFailed":
            throw new Error(`optimization ${optimizationId} failed: ${event.data.reason}`);
          default:
            return undefined;
        }
      }),
      filter((result): result is OptimizationResult => result !== undefined),
    ),
  );
};

/**
 * Publishes the `OptimizationRequested` and runs an optimizer in this process until that optimization
 * finished (library use and tests; `dspex optimize` uses the deployment's optimizer when one runs).
 */
export const requestOptimization = (
  log: EventLog,
  data: EventOf<"OptimizationRequested">["data"],
  options: Omit<OptimizerOptions, "onProgress" | "onResult" | "onError"> & {
    onProgress?(progress: Progress): void;
  } = {},
): Promise<OptimizationResult> =>
  appendEvents(log, [optimizationRequested(data)]).then(
    () =>
      new Promise<OptimizationResult>((resolve, reject) => {
        const ours = data.optimizationId;
        const optimizer = startOptimizer(log, {
          ...options,
          onProgress: (id, progress) => id === ours && options.onProgress?.(progress),
          onResult: (result) => {
            if (result.optimizationId === ours) optimizer.stop().then(() => resolve(result), reject);
          },
          onError: (id, error) => {
            if (id === ours) optimizer.stop().then(() => reject(error), reject);
            else console.error(`dspex optimizer: optimization ${id} failed: ${error.message}`);
          },
        });
      }),
  );
