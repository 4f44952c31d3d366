import type { Snapshot, SnapshotStore } from "../projections/snapshots.ts";
import type { Envelope } from "../streams/envelope.ts";
import type { DspexEvent } from "../streams/events/index.ts";
import type { EventLog, LogRecord, Position } from "../streams/log.ts";
import { appendEvents, consumeEvents, type EventBatch, readEvents } from "../streams/store.ts";

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
  /** Bump when the state's shape or `handle` changes: a snapshot of another version is not used. */
  version?: number;
  /** The state as JSON for a snapshot (default: the state itself), and back. */
  snapshotOf?(state: S): unknown;
  restore?(saved: unknown): S;
}

export interface RuntimeOptions {
  maxBatch?: number;
  /** The wall clock for ticks; tests may pass their own. */
  clock?: () => number;
  /** How many recent input ids to remember for dropping redelivered inputs (a window, not every id). */
  dedupCapacity?: number;
  /** Longest sleep between ticks, so a processor with pending timers never oversleeps. */
  maxTickIntervalMs?: number;
  /**
   * Where the state is saved now and then, so a restart loads the latest snapshot and replays only the
   * inputs committed after it (the projections' snapshot stores).
   */
  snapshots?: SnapshotStore;
  /** Inputs between snapshots (default 1000). */
  snapshotEvery?: number;
  /**
   * A batch that changed nothing (no output, same state) commits no transaction of its own: the next
   * commit of its partition covers it, or, at the latest, a commit this long after it (ms, default 1000).
   */
  quietCommitMs?: number;
}

export interface RunningProcessor<S> {
  /** Resolves when the state is rebuilt and the processor consumes. */
  ready: Promise<void>;
  /** Resolves when stopped; rejects when a batch failed (nothing of it was committed). */
  done: Promise<void>;
  state(): S;
  /** How many input ids it remembers to drop redelivered inputs (at most `dedupCapacity`). */
  remembered(): number;
  stop(): Promise<void>;
}

/** Remembers the last `capacity` ids, to drop redelivered inputs: memory stays bounded. */
export const recentIds = (capacity: number, from: Iterable<string> = []) => {
  const ids = new Set<string>();
  const add = (id: string) => {
    ids.delete(id);
    ids.add(id);
    if (ids.size > capacity) ids.delete(ids.values().next().value!);
  };
  for (const id of from) add(id);
  return {
    has: (id: string) => ids.has(id),
    add,
    get size() {
      return ids.size;
    },
    /** Oldest first. */
    list: (): string[] => [...ids],
  };
};
export type RecentIds = ReturnType<typeof recentIds>;

const positionKey = (topic: string, partition: number) => `${topic}/${partition}`;

/** What a processor's state was rebuilt from: a snapshot (maybe), then the inputs its group committed after it. */
export interface Rebuilt<S> {
  state: S;
  seen: RecentIds;
  /** Next offset per `topic/partition` the state includes. */
  positions: Map<string, number>;
  /** Inputs applied since the beginning of the log. */
  applied: number;
  /** Inputs replayed now (after the snapshot, if one was loaded). */
  replayed: number;
  snapshot?: Snapshot;
}

const snapshotName = (processor: Processor<unknown>) => `processor-${processor.name}`;
const versionsOf = (processor: Processor<unknown>) => ({ [processor.name]: processor.version ?? 1 });

/**
 * Every input the group has committed from `positions` on (default: the beginning), in the order it most
 * likely saw them (time, then topic order).
 */
const committedInputs = async (
  log: EventLog,
  processor: Processor<unknown>,
  positions: ReadonlyMap<string, number> = new Map(),
) => {
  const inputs: { record: LogRecord; event: DspexEvent; rank: number }[] = [];
  for (const [rank, topic] of processor.topics.entries()) {
    for (const [partition, next] of await log.committed(processor.name, topic)) {
      const from = positions.get(positionKey(topic, partition)) ?? 0;
      if (next <= from) continue;
      // Offsets are positions, not counts: on Kafka transaction markers take offsets too.
      for (const read of await readEvents(log, topic, { partition, fromOffset: from, limit: next - from }))
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
 * A processor's state as its group committed it: the latest usable snapshot, if `snapshots` holds one,
 * then every committed input after it, deduplicated by event id as the runtime does.
 */
export const rebuildState = async <S>(
  log: EventLog,
  processor: Processor<S>,
  options: Pick<RuntimeOptions, "snapshots" | "dedupCapacity"> = {},
): Promise<Rebuilt<S>> => {
  const capacity = options.dedupCapacity ?? defaultDedupCapacity;
  const saved = await options.snapshots?.load(snapshotName(processor as Processor<unknown>));
  const usable =
    saved !== undefined &&
    JSON.stringify(saved.versions) === JSON.stringify(versionsOf(processor as Processor<unknown>));
  const parts = usable ? new Map(saved.states[processor.name] ?? []) : new Map<string, unknown>();
  const rebuilt: Rebuilt<S> = {
    state: !usable
      ? processor.initialState
      : processor.restore
        ? processor.restore(parts.get("state"))
        : (parts.get("state") as S),
    seen: recentIds(capacity, usable ? ((parts.get("seen") as string[] | undefined) ?? []) : []),
    positions: new Map(usable ? Object.entries(saved.positions) : []),
    applied: usable ? saved.events : 0,
    replayed: 0,
    snapshot: usable ? saved : undefined,
  };
  for (const { record, event } of await committedInputs(
    log,
    processor as Processor<unknown>,
    rebuilt.positions,
  )) {
    rebuilt.positions.set(positionKey(record.topic, record.partition), record.offset + 1);
    rebuilt.applied++;
    rebuilt.replayed++;
    if (rebuilt.seen.has(event.id)) continue;
    rebuilt.seen.add(event.id);
    rebuilt.state = processor.handle(rebuilt.state, event, {
      now: record.timestamp,
      source: record,
      consumer: processor.name,
    }).state;
  }
  return rebuilt;
};

const defaultDedupCapacity = 20_000;

/** A fenced commit: another member owns the partition now (embedded FencedError, Kafka TransactionFencedError). */
const isFencedCommit = (error: unknown) =>
  error instanceof Error && (error.name === "FencedError" || error.name === "TransactionFencedError");

/** The one partition a batch read, if it read only one. */
const onePartition = (batch: EventBatch): string | undefined => {
  let key: string | undefined;
  for (const { record } of batch.events) {
    const next = positionKey(record.topic, record.partition);
    if (key !== undefined && key !== next) return undefined;
    key = next;
  }
  return key;
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
  const maxTickInterval = options.maxTickIntervalMs ?? 1_000;
  const snapshotEvery = options.snapshotEvery ?? 1_000;
  const quietCommitMs = options.quietCommitMs ?? 1_000;
  let seen = recentIds(options.dedupCapacity ?? defaultDedupCapacity);
  let state = processor.initialState;
  /** Next offset per partition that `state` includes, and inputs applied in all (for snapshots). */
  let positions = new Map<string, number>();
  let applied = 0;
  let sinceSnapshot = 0;
  /** Per partition, the latest batch that changed nothing and is not committed yet. */
  const quiet = new Map<string, EventBatch>();
  let quietTimer: NodeJS.Timeout | undefined;
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

  const saveSnapshot = async () => {
    if (!options.snapshots) return;
    sinceSnapshot = 0;
    const parts: [string, unknown][] = [
      ["state", processor.snapshotOf ? processor.snapshotOf(state) : state],
      ["seen", seen.list()],
    ];
    await options.snapshots.save({
      runner: snapshotName(processor as Processor<unknown>),
      versions: versionsOf(processor as Processor<unknown>),
      positions: Object.fromEntries(positions),
      events: applied,
      states: { [processor.name]: parts },
      takenAt: new Date(clock()).toISOString(),
    });
  };

  /** Commits the offsets of the quiet batches no later commit covered; a partition lost meanwhile is skipped. */
  const commitQuiet = async () => {
    clearTimeout(quietTimer);
    quietTimer = undefined;
    for (const [key, batch] of [...quiet]) {
      quiet.delete(key);
      await batch.commitWith([]).catch((error) => {
        if (!isFencedCommit(error)) throw error;
      });
    }
  };

  const handleBatch = async (batch: EventBatch) => {
    let next = state;
    const emit: Envelope[] = [];
    // Ids are remembered once the batch commits: a batch that fails is handed over again, not dropped.
    const taken = new Set<string>();
    for (const { record, event } of batch.events) {
      if (seen.has(event.id) || taken.has(event.id)) continue;
      taken.add(event.id);
      const result = processor.handle(next, event, {
        now: record.timestamp,
        source: record,
        consumer: processor.name,
      });
      next = result.state;
      emit.push(...result.emit);
    }
    const partition = onePartition(batch);
    if (emit.length === 0 && next === state && partition !== undefined && quietCommitMs > 0) {
      batch.defer();
      quiet.set(partition, batch);
      if (!quietTimer) {
        quietTimer = setTimeout(() => void exclusive(commitQuiet).catch(fail), quietCommitMs);
        quietTimer.unref?.();
      }
    } else {
      await batch.commitWith(emit);
      for (const { record } of batch.events) quiet.delete(positionKey(record.topic, record.partition));
    }
    state = next;
    for (const id of taken) seen.add(id);
    for (const { record } of batch.events)
      positions.set(positionKey(record.topic, record.partition), record.offset + 1);
    applied += batch.events.length;
    sinceSnapshot += batch.events.length;
    if (options.snapshots && snapshotEvery > 0 && sinceSnapshot >= snapshotEvery) await saveSnapshot();
  };

  const start = async () => {
    await log.ensureTopics(processor.topics.map((topic) => ({ topic })));
    const rebuilt = await rebuildState(log, processor, options);
    state = rebuilt.state;
    seen = rebuilt.seen;
    positions = rebuilt.positions;
    applied = rebuilt.applied;
    consumer = consumeEvents(
      log,
      { group: processor.name, topics: [...processor.topics], maxBatch: options.maxBatch ?? 500 },
      (batch) => exclusive(() => handleBatch(batch)).then(scheduleTick),
    );
    scheduleTick();
  };

  const ready = start();
  const done = ready
    .then(() => Promise.race([consumer!.done, failed]))
    .finally(() => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(quietTimer);
    });
  done.catch(() => undefined);

  return {
    ready,
    done,
    state: () => state,
    remembered: () => seen.size,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await ready.catch(() => undefined);
      // What changed nothing is committed before leaving, so a restart doesn't hand it over again.
      await exclusive(commitQuiet).catch(() => undefined);
      await consumer?.stop();
      await turn;
      clearTimeout(quietTimer);
    },
  };
};
