import { untilAvailable } from "../../streams/availability.ts";
import { decodeRecord, Headers } from "../../streams/codec.ts";
import type { Envelope } from "../../streams/envelope.ts";
import { type EventOf, StepFailed } from "../../streams/events/index.ts";
import {
  type EventLog,
  headerOf,
  isTransientError,
  type LogRecord,
  type Position,
  type TopicPartition,
} from "../../streams/log.ts";
import { appendEvents, consumeEvents, readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import type { WorkerPool } from "./pool.ts";
import { answerEnvelope, answeredStep } from "./step-answer.ts";

export interface StepRunnerOptions {
  group?: string;
  /** Steps handed to the pool at once; more wait on the log (backpressure), not in memory. */
  maxInFlight?: number;
}

/** The failure a step gets when no worker could finish it (the pool gave up on it). */
const lostStep = (dispatched: EventOf<"StepDispatched">, error: Error): Envelope =>
  StepFailed.create({
    ...answerEnvelope(dispatched, "failed"),
    data: {
      ...answeredStep(dispatched, "pool"),
      error: { kind: "internal", message: error.message, retryable: true },
    },
  });

/**
 * Offsets that may be committed: per partition, everything before the oldest step still running.
 * A step's offset is committed only after its result is on the log (at-least-once; result ids are
 * derived from the step's id, so a step that runs twice yields the same events and the coordinator
 * keeps the first).
 */
export const createOffsetTracker = () => {
  const running = new Map<string, { topic: string; partition: number; offsets: Set<number>; next: number }>();
  const partitionOf = (r: Position) => {
    const key = `${r.topic}\u0000${r.partition}`;
    let entry = running.get(key);
    if (!entry) {
      entry = { topic: r.topic, partition: r.partition, offsets: new Set(), next: 0 };
      running.set(key, entry);
    }
    return entry;
  };
  return {
    started(record: Position): void {
      const entry = partitionOf(record);
      entry.offsets.add(record.offset);
      entry.next = Math.max(entry.next, record.offset + 1);
    },
    /** Where the partition may be committed now; undefined once the partition was forgotten (taken away). */
    finished(record: Position): Position | undefined {
      const entry = running.get(`${record.topic}\u0000${record.partition}`);
      if (!entry) return undefined;
      entry.offsets.delete(record.offset);
      const offset = entry.offsets.size === 0 ? entry.next : Math.min(...entry.offsets);
      return { topic: entry.topic, partition: entry.partition, offset };
    },
    /** Partitions taken from this member: what runs there now is not this member's to commit. */
    forget(partitions: readonly { topic: string; partition: number }[]): void {
      for (const tp of partitions) running.delete(`${tp.topic}\u0000${tp.partition}`);
    },
  };
};

/** Commits the position, if there is one to commit; the log unreachable a while, until it is back. */
export const commitIfOwned = async (
  log: EventLog,
  group: string,
  position: Position | undefined,
  signal?: AbortSignal,
) => {
  if (position) await untilAvailable(() => log.commit(group, [position]), isTransientError, { signal });
};

/** How many step results a page of the answered-steps scan reads. */
const scanPage = 5_000;

/**
 * The steps of a dspex.steps partition, from `fromOffset` on, whose result is already on the log: results
 * are keyed like their steps, so they are in the same partition of dspex.step-results. Memory is bounded by
 * the steps not committed yet, not by the log.
 */
export const answeredSteps = async (
  log: EventLog,
  partition: number,
  fromOffset: number,
): Promise<Set<string>> => {
  const pending = new Set<string>();
  for (const read of await readEvents(log, Topics.steps, { partition, fromOffset }))
    if ("event" in read && read.event.type === "StepDispatched") pending.add(read.event.data.stepId);
  const answered = new Set<string>();
  if (pending.size === 0) return answered;
  for (let offset = 0; ; ) {
    const page = await log.read(Topics.stepResults, { partition, fromOffset: offset, limit: scanPage });
    if (page.length === 0) return answered;
    for (const record of page) {
      const type = headerOf(record, Headers.type);
      if (type !== "StepCompleted" && type !== "StepFailed") continue;
      const decoded = decodeRecord(record);
      if (decoded.ok && "stepId" in decoded.event.data && pending.has(decoded.event.data.stepId as string))
        answered.add(decoded.event.data.stepId as string);
    }
    offset = page.at(-1)!.offset + 1;
  }
};

/**
 * Runs the log's StepDispatched commands on a pool of Python stdio workers and appends their results. With
 * `maxInFlight` steps taken it stops taking more (they wait on the log). A step whose result is already on
 * the log (a restart, a redelivery, another group) is not run again: an LM call is paid once.
 */
export const startStepRunner = (log: EventLog, pool: WorkerPool, options: StepRunnerOptions = {}) => {
  const group = options.group ?? "dspex-python-stdio";
  const maxInFlight = options.maxInFlight ?? 8;
  const running = new Set<Promise<void>>();
  const waiting: { record: LogRecord; dispatched: EventOf<"StepDispatched"> }[] = [];
  const offsets = createOffsetTracker();
  const answered = new Set<string>();
  /** Steps waiting or running here. */
  const inHand = new Set<string>();
  let held: TopicPartition[] = [];
  let pausedNow = false;

  const fullness = () => {
    const full = running.size + waiting.length >= maxInFlight;
    if (full === pausedNow) return;
    pausedNow = full;
    if (full) consumer.pause(held);
    else consumer.resume(held);
  };

  const runStep = async (record: LogRecord, dispatched: EventOf<"StepDispatched">) => {
    let results: Envelope[];
    try {
      const run = await pool.run(dispatched);
      results = [run.started, run.result];
    } catch (error) {
      results = [lostStep(dispatched, error as Error)];
    }
    try {
      await untilAvailable(() => appendEvents(log, results), isTransientError);
      await commitIfOwned(log, group, offsets.finished(record));
    } finally {
      inHand.delete(dispatched.data.stepId);
    }
  };

  const startWaiting = () => {
    while (waiting.length > 0 && running.size < maxInFlight) {
      const { record, dispatched } = waiting.shift()!;
      const task = runStep(record, dispatched)
        .catch((error) => console.error(`dspex: could not record step ${dispatched.data.stepId}: ${error}`))
        .finally(() => {
          running.delete(task);
          startWaiting();
          fullness();
        });
      running.add(task);
    }
  };

  const consumer = consumeEvents(
    log,
    {
      group,
      topics: [Topics.steps],
      autoCommit: false,
      maxBatch: maxInFlight,
      onAssigned: async (partitions) => {
        held = [...held, ...partitions];
        for (const { partition } of partitions) {
          const from = (await log.committed(group, Topics.steps)).get(partition) ?? 0;
          for (const stepId of await answeredSteps(log, partition, from)) answered.add(stepId);
        }
        if (pausedNow) consumer.pause(partitions);
      },
      onRevoked: (partitions) => {
        const gone = new Set(partitions.map((tp) => tp.partition));
        held = held.filter((tp) => !gone.has(tp.partition));
        for (let i = waiting.length - 1; i >= 0; i--)
          if (gone.has(waiting[i]!.record.partition))
            inHand.delete(waiting.splice(i, 1)[0]!.dispatched.data.stepId);
        offsets.forget(partitions);
      },
    },
    async (batch) => {
      const passed: Position[] = [];
      for (const { record, event } of batch.events) {
        if (event.type !== "StepDispatched") continue;
        // The same step again (refetched after a rebalance that left its partition here): it is in hand.
        if (inHand.has(event.data.stepId)) continue;
        offsets.started(record);
        if (answered.delete(event.data.stepId)) {
          const at = offsets.finished(record);
          if (at) passed.push(at);
          continue;
        }
        inHand.add(event.data.stepId);
        waiting.push({ record, dispatched: event });
      }
      startWaiting();
      fullness();
      if (passed.length > 0) await untilAvailable(() => log.commit(group, passed), isTransientError);
    },
  );

  return {
    done: consumer.done,
    /** Stops taking steps and waits for the ones running. */
    async stop(): Promise<void> {
      for (const { dispatched } of waiting.splice(0)) inHand.delete(dispatched.data.stepId);
      await consumer.stop();
      await Promise.allSettled(running);
    },
  };
};
