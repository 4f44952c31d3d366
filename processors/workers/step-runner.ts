import type { Envelope } from "../../streams/envelope.ts";
import { type EventOf, StepFailed } from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import type { EventLog, LogRecord, Position } from "../../streams/log.ts";
import { appendEvents, consumeEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import type { WorkerPool } from "./pool.ts";

export interface StepRunnerOptions {
  group?: string;
  /** Steps handed to the pool at once; more wait on the log (backpressure), not in memory. */
  maxInFlight?: number;
}

/** The failure a step gets when no worker could finish it (the pool gave up on it). */
const lostStep = (dispatched: EventOf<"StepDispatched">, error: Error): Envelope => {
  const step = dispatched.data;
  return StepFailed.create({
    id: derivedId(dispatched.id, "failed"),
    stream: `execution-${step.executionId}`,
    key: step.executionId,
    correlationId: dispatched.correlationId,
    causationId: dispatched.id,
    data: {
      stepId: step.stepId,
      executionId: step.executionId,
      stageId: step.stageId,
      attempt: step.attempt,
      worker: "pool",
      error: { kind: "internal", message: error.message, retryable: true },
    },
  });
};

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
    finished(record: Position): Position {
      const entry = partitionOf(record);
      entry.offsets.delete(record.offset);
      const offset = entry.offsets.size === 0 ? entry.next : Math.min(...entry.offsets);
      return { topic: entry.topic, partition: entry.partition, offset };
    },
  };
};

/** Runs the log's StepDispatched commands on a pool of Python stdio workers and appends their results. */
export const startStepRunner = (log: EventLog, pool: WorkerPool, options: StepRunnerOptions = {}) => {
  const group = options.group ?? "dspex-python-stdio";
  const maxInFlight = options.maxInFlight ?? 8;
  const running = new Set<Promise<void>>();
  const offsets = createOffsetTracker();

  const runStep = async (record: LogRecord, dispatched: EventOf<"StepDispatched">) => {
    let results: Envelope[];
    try {
      const run = await pool.run(dispatched);
      results = [run.started, run.result];
    } catch (error) {
      results = [lostStep(dispatched, error as Error)];
    }
    await appendEvents(log, results);
    await log.commit(group, [offsets.finished(record)]);
  };

  const consumer = consumeEvents(
    log,
    { group, topics: [Topics.steps], autoCommit: false, maxBatch: maxInFlight },
    async (batch) => {
      for (const { record, event } of batch.events) {
        if (event.type !== "StepDispatched") continue;
        while (running.size >= maxInFlight) await Promise.race(running);
        offsets.started(record);
        const task = runStep(record, event)
          .catch((error) => console.error(`dspex: could not record step ${event.data.stepId}: ${error}`))
          .finally(() => running.delete(task));
        running.add(task);
      }
    },
  );

  return {
    done: consumer.done,
    /** Stops taking steps and waits for the ones running. */
    async stop(): Promise<void> {
      await consumer.stop();
      await Promise.allSettled(running);
    },
  };
};
