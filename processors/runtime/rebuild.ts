import type { Snapshot } from "../../projections/snapshots.ts";
import type { EventLog } from "../../streams/log.ts";
import { readEvents } from "../../streams/store.ts";
import { mergeByTime } from "../../streams/time-order.ts";
import type { CommittedInput, Processor, RuntimeOptions } from "./types.ts";

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

export const defaultDedupCapacity = 20_000;

export const positionKey = (topic: string, partition: number) => `${topic}/${partition}`;

/** What a task's state was rebuilt from: a snapshot (maybe), then the inputs its group committed after it. */
export interface Rebuilt<S> {
  partition: number;
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

// biome-ignore lint/suspicious/noExplicitAny: the runtime's helpers work for any state and table
type AnyProcessor = Processor<any, any>;

export const snapshotName = (processor: AnyProcessor, partition: number) =>
  `processor-${processor.name}-task-${partition}`;
export const versionsOf = (processor: AnyProcessor) => ({ [processor.name]: processor.version ?? 1 });

/**
 * Every input of task `partition` the group has committed from `positions` on (default: the beginning), as
 * the consumer hands them over: each topic in offset order, the topics merged by time (ties to the earlier
 * topic of `processor.topics`).
 */
export const committedInputs = async (
  log: EventLog,
  processor: AnyProcessor,
  partition: number,
  positions: ReadonlyMap<string, number> = new Map(),
): Promise<CommittedInput[]> => {
  const perTopic: CommittedInput[][] = [];
  for (const [rank, topic] of processor.topics.entries()) {
    const next = (await log.committed(processor.name, topic)).get(partition);
    const from = positions.get(positionKey(topic, partition)) ?? 0;
    if (next === undefined || next <= from) continue;
    // Offsets are positions, not counts: on Kafka transaction markers take offsets too.
    const reads = await readEvents(log, topic, { partition, fromOffset: from, limit: next - from });
    perTopic.push(
      reads.flatMap((read) =>
        "event" in read && read.record.offset < next
          ? [{ record: read.record, event: read.event, rank }]
          : [],
      ),
    );
  }
  return mergeByTime(perTopic, (input) => input.record.timestamp);
};

/**
 * The state a snapshot holds, if it is usable: written by the same versions of the processor, and restored
 * without complaint. A snapshot that is not is said once and ignored (the task is rebuilt from the log).
 */
const restoredState = <S, T>(
  processor: Processor<S, T>,
  saved: Snapshot,
  partition: number,
): { state: S } | undefined => {
  if (JSON.stringify(saved.versions) !== JSON.stringify(versionsOf(processor))) return undefined;
  const state = new Map(saved.states[processor.name] ?? []).get("state");
  try {
    return { state: processor.restore ? processor.restore(state) : (state as S) };
  } catch (error) {
    console.warn(
      `${processor.name}: the snapshot of task ${partition} is not usable (${(error as Error).message}); rebuilding the task from the log`,
    );
    return undefined;
  }
};

/**
 * A task's state as its group committed it: the latest usable snapshot, if `snapshots` holds one, then
 * every committed input of the task after it, deduplicated by event id as the runtime does.
 */
export const rebuildTask = async <S, T>(
  log: EventLog,
  processor: Processor<S, T>,
  partition: number,
  table: T,
  options: Pick<RuntimeOptions, "snapshots" | "dedupCapacity"> = {},
): Promise<Rebuilt<S>> => {
  const capacity = options.dedupCapacity ?? defaultDedupCapacity;
  const found = await options.snapshots?.load(snapshotName(processor, partition));
  const restored = found && restoredState(processor, found, partition);
  const saved = restored ? found : undefined;
  const usable = saved !== undefined;
  const parts = usable ? new Map(saved.states[processor.name] ?? []) : new Map<string, unknown>();
  const rebuilt: Rebuilt<S> = {
    partition,
    state: restored ? restored.state : processor.initialState,
    seen: recentIds(capacity, usable ? ((parts.get("seen") as string[] | undefined) ?? []) : []),
    positions: new Map(usable ? Object.entries(saved.positions) : []),
    applied: usable ? saved.events : 0,
    replayed: 0,
    snapshot: usable ? saved : undefined,
  };
  for (const { record, event } of await committedInputs(log, processor, partition, rebuilt.positions)) {
    rebuilt.positions.set(positionKey(record.topic, record.partition), record.offset + 1);
    rebuilt.applied++;
    rebuilt.replayed++;
    if (rebuilt.seen.has(event.id)) continue;
    rebuilt.seen.add(event.id);
    rebuilt.state = processor.handle(rebuilt.state, event, {
      now: record.timestamp,
      source: record,
      key: record.key,
      consumer: processor.name,
      table,
    }).state;
  }
  return rebuilt;
};

/** Every task's state as the group committed it (tests and tools: a whole processor rebuilt in one place). */
export const rebuildTasks = async <S, T>(
  log: EventLog,
  processor: Processor<S, T>,
  table: T,
  options: Pick<RuntimeOptions, "snapshots" | "dedupCapacity"> = {},
): Promise<Map<number, Rebuilt<S>>> => {
  const counts = await Promise.all(processor.topics.map((topic) => log.partitions(topic)));
  const tasks = new Map<number, Rebuilt<S>>();
  for (let partition = 0; partition < Math.max(0, ...counts); partition++)
    tasks.set(partition, await rebuildTask(log, processor, partition, table, options));
  return tasks;
};
