import type { Envelope } from "../streams/envelope.ts";
import type { DspexEvent } from "../streams/events/index.ts";
import type { EventLog, LogRecord, Position } from "../streams/log.ts";
import { appendEvents, consumeEvents, readEvents } from "../streams/store.ts";

export interface ProcessorContext {
  /** The time of this input: when the log stored it (so a replay sees the same times). */
  now: number;
  /** Where the input was read. */
  source: Position;
  /** The processor's consumer group. */
  consumer: string;
}

export interface Output<S> {
  state: S;
  emit: Envelope[];
}

/**
 * A processor: pure functions of its state and an input (or the time), returning the next state
 * and the events to emit. The runtime does every I/O.
 */
export interface Processor<S> {
  /** Also the consumer group. */
  name: string;
  /** Input topics; on a rebuild, inputs of the same millisecond replay in this order. */
  topics: readonly string[];
  initialState: S;
  handle(state: S, event: DspexEvent, ctx: ProcessorContext): Output<S>;
  /**
   * Time passing (timeouts, backoff). What it emits is appended and comes back as input; the state
   * it returns may only carry soft marks (such as "already emitted"), which a rebuild forgets.
   */
  tick?(state: S, now: number): Output<S>;
  /** When `tick` next has something to do. */
  nextTickAt?(state: S): number | undefined;
}

export interface RuntimeOptions {
  maxBatch?: number;
  /** The wall clock for ticks; tests may pass their own. */
  clock?: () => number;
  /** How many input ids to remember for dropping redelivered inputs. */
  dedupCapacity?: number;
  /** Longest sleep between ticks, so a processor with pending timers never oversleeps. */
  maxTickIntervalMs?: number;
}

export interface RunningProcessor<S> {
  /** Resolves when the state is rebuilt and the processor consumes. */
  ready: Promise<void>;
  /** Resolves when stopped; rejects when a batch failed (nothing of it was committed). */
  done: Promise<void>;
  state(): S;
  stop(): Promise<void>;
}

/** Remembers the last `capacity` ids, to drop redelivered inputs. */
export const recentIds = (capacity: number) => {
  const ids = new Set<string>();
  return {
    has: (id: string) => ids.has(id),
    add(id: string) {
      ids.add(id);
      if (ids.size > capacity) ids.delete(ids.values().next().value!);
    },
  };
};

/** Every input the group has committed, in the order it most likely saw them (time, then topic order). */
const committedInputs = async (log: EventLog, processor: Processor<unknown>) => {
  const inputs: { record: LogRecord; event: DspexEvent; rank: number }[] = [];
  for (const [rank, topic] of processor.topics.entries()) {
    for (const [partition, next] of await log.committed(processor.name, topic)) {
      if (next <= 0) continue;
      // Offsets are positions, not counts: on Kafka transaction markers take offsets too.
      for (const read of await readEvents(log, topic, { partition, fromOffset: 0, limit: next }))
        if ("event" in read && read.record.offset < next)
          inputs.push({ record: read.record, event: read.event, rank });
    }
  }
  return inputs.sort(
    (a, b) =>
      a.record.timestamp - b.record.timestamp ||
      a.rank - b.rank ||
      a.record.partition - b.record.partition ||
      a.record.offset - b.record.offset,
  );
};

/**
 * Lifts a processor onto a log: rebuilds its state by replaying what it committed, then consumes;
 * each batch's outputs and input offsets commit together (exactly-once effect), and inputs it has
 * seen (by event id) are dropped.
 */
export const runProcessor = <S>(
  log: EventLog,
  processor: Processor<S>,
  options: RuntimeOptions = {},
): RunningProcessor<S> => {
  const clock = options.clock ?? Date.now;
  const seen = recentIds(options.dedupCapacity ?? 200_000);
  const maxTickInterval = options.maxTickIntervalMs ?? 1_000;
  let state = processor.initialState;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let consumer: ReturnType<typeof consumeEvents> | undefined;
  // Batches and ticks take turns: each sees the state the previous one left.
  let turn: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const next = turn.then(work);
    turn = next.catch(() => undefined);
    return next;
  };

  const apply = (current: S, event: DspexEvent, record: LogRecord) => {
    if (seen.has(event.id)) return { state: current, emit: [] };
    seen.add(event.id);
    return processor.handle(current, event, {
      now: record.timestamp,
      source: record,
      consumer: processor.name,
    });
  };

  const scheduleTick = () => {
    if (stopped || !processor.tick) return;
    clearTimeout(timer);
    const due = processor.nextTickAt?.(state);
    if (due === undefined && processor.nextTickAt) return;
    const wait = Math.min(maxTickInterval, Math.max(0, (due ?? clock()) - clock()));
    timer = setTimeout(() => void exclusive(tick).then(scheduleTick, fail), wait);
    timer.unref?.();
  };

  const tick = async () => {
    if (stopped || !processor.tick) return;
    const result = processor.tick(state, clock());
    if (result.emit.length > 0) await appendEvents(log, result.emit);
    state = result.state;
  };

  let fail: (error: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => undefined);

  const start = async () => {
    await log.ensureTopics(processor.topics.map((topic) => ({ topic })));
    for (const { record, event } of await committedInputs(log, processor as Processor<unknown>))
      state = apply(state, event, record).state;
    consumer = consumeEvents(
      log,
      { group: processor.name, topics: [...processor.topics], maxBatch: options.maxBatch ?? 500 },
      (batch) =>
        exclusive(async () => {
          let next = state;
          const emit: Envelope[] = [];
          for (const { record, event } of batch.events) {
            const result = apply(next, event, record);
            next = result.state;
            emit.push(...result.emit);
          }
          await batch.commitWith(emit);
          state = next;
        }).then(scheduleTick),
    );
    scheduleTick();
  };

  const ready = start();
  const done = ready
    .then(() => Promise.race([consumer!.done, failed]))
    .finally(() => {
      stopped = true;
      clearTimeout(timer);
    });
  done.catch(() => undefined);

  return {
    ready,
    done,
    state: () => state,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await ready.catch(() => undefined);
      await consumer?.stop();
      await turn;
    },
  };
};
