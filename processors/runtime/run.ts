import { untilAvailable } from "../../streams/availability.ts";
import { Headers } from "../../streams/codec.ts";
import type { Envelope } from "../../streams/envelope.ts";
import {
  type EventLog,
  FencedError,
  headerOf,
  isTransientError,
  type TopicPartition,
} from "../../streams/log.ts";
import { appendEvents, consumeEvents, type EventBatch } from "../../streams/store.ts";
import {
  defaultDedupCapacity,
  positionKey,
  type RecentIds,
  rebuildTask,
  snapshotName,
  versionsOf,
} from "./rebuild.ts";
import { openTable, type TableReader } from "./table.ts";
import type { Processor, RunningProcessor, RuntimeOptions } from "./types.ts";

/** One task's state (partition p of every input topic) and what the runtime keeps beside it. */
interface Task<S> {
  partition: number;
  state: S;
  seen: RecentIds;
  /** Next offset per `topic/partition` the state includes, and inputs applied in all (for snapshots). */
  positions: Map<string, number>;
  applied: number;
  sinceSnapshot: number;
  /** Input topics this task does not take records from now (backpressure). */
  paused: readonly string[];
  /** A commit of this task failed and may have gone in: rebuilt from the log before its next input. */
  unsure?: boolean;
  /**
   * The ids on its input partitions past what its state includes, read at its first tick with events
   * since it was rebuilt or a tick's append failed (undefined until then; see `notOnLogYet`).
   */
  unreadIds?: ReadonlySet<string>;
}

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

/** How far the log's clock and this one may disagree when judging whether the table has caught up. */
const clockSkewMs = 1_000;

/** Every input topic of a processor must have as many partitions as the others (co-partitioning). */
const checkCopartitioned = (name: string, counts: ReadonlyArray<{ topic: string; partitions: number }>) => {
  if (new Set(counts.map((c) => c.partitions)).size <= 1) return;
  const listed = counts.map((c) => `${c.topic} ${c.partitions}`).join(", ");
  throw new Error(
    `co-partitioning: the input topics of ${name} must have the same number of partitions (${listed}); ` +
      "give them one count (Kafka: add partitions to the smaller ones)",
  );
};

/**
 * Lifts a processor onto a log. Each task (partition p of every input topic) this instance is assigned is
 * rebuilt by replaying what the group committed on it, then consumed; a batch's outputs and input offsets
 * commit together (exactly-once effect), and inputs a task has seen (by event id) are dropped. A task taken
 * away is forgotten: its new owner rebuilds it from the log.
 */
export const runProcessor = <S, T = undefined>(
  log: EventLog,
  processor: Processor<S, T>,
  options: RuntimeOptions = {},
): RunningProcessor<S> => {
  const clock = options.clock ?? Date.now;
  const maxTickInterval = options.maxTickIntervalMs ?? 1_000;
  const snapshotEvery = options.snapshotEvery ?? 1_000;
  const quietCommitMs = options.quietCommitMs ?? 1_000;
  const tasks = new Map<number, Task<S>>();
  let partitionCounts = new Map<string, number>();
  let table: TableReader<T> | undefined;
  const tableNow = (): T => (table ? table.value() : (undefined as T));
  /** Per partition, the latest batch that changed nothing and is not committed yet. */
  const quiet = new Map<string, EventBatch>();
  let quietTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  const stopping = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let consumer: ReturnType<typeof consumeEvents> | undefined;
  // Batches, ticks and assignments take turns: each sees the state the previous one left.
  let turn: Promise<unknown> = Promise.resolve();
  const exclusive = <R>(work: () => Promise<R>): Promise<R> => {
    const next = turn.then(work);
    turn = next.catch(() => undefined);
    return next;
  };

  let fail: (error: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => undefined);

  const pausable = (task: Task<S>, topics: readonly string[]): TopicPartition[] =>
    topics
      .filter((topic) => task.partition < (partitionCounts.get(topic) ?? 0))
      .map((topic) => ({ topic, partition: task.partition }));

  /** Pauses and resumes the task's inputs as its state asks. */
  const applyPause = (task: Task<S>) => {
    if (!processor.pausedTopics || !consumer) return;
    const wanted = processor.pausedTopics(task.state);
    if (wanted.length === task.paused.length && wanted.every((t) => task.paused.includes(t))) return;
    consumer.resume(
      pausable(
        task,
        task.paused.filter((t) => !wanted.includes(t)),
      ),
    );
    consumer.pause(
      pausable(
        task,
        wanted.filter((t) => !task.paused.includes(t)),
      ),
    );
    task.paused = [...wanted];
  };

  const scheduleTick = () => {
    if (stopped || !processor.tick) return;
    clearTimeout(timer);
    let due: number | undefined;
    for (const task of tasks.values()) {
      const next = processor.nextTickAt ? processor.nextTickAt(task.state) : clock();
      if (next !== undefined && (due === undefined || next < due)) due = next;
    }
    if (due === undefined) return;
    const wait = Math.min(maxTickInterval, Math.max(0, due - clock()));
    timer = setTimeout(() => void exclusive(tick).then(scheduleTick, retryOrFail), wait);
    timer.unref?.();
  };

  /** A tick the log could not take (unreachable a while): it runs again later; anything else stops the processor. */
  const retryOrFail = (error: unknown) => {
    if (!isTransientError(error) || stopped) return fail(error);
    clearTimeout(timer);
    timer = setTimeout(() => void exclusive(tick).then(scheduleTick, retryOrFail), maxTickInterval);
    timer.unref?.();
  };

  /**
   * Of a tick's events, those its task's inputs do not hold yet. A tick's events are appended outside any
   * commit, so a task rebuilt from what its group committed may not know of those an earlier tick appended
   * (a timeout, a retry's schedule), nor may a tick whose append failed (its answer lost with the broker)
   * know whether they went in; emitted again, they would be on the log twice under the same ids. So the
   * first tick with events after either reads what is on the task's input partitions past its state, once.
   */
  const notOnLogYet = async (task: Task<S>, events: readonly Envelope[]): Promise<Envelope[]> => {
    if (!task.unreadIds) {
      const ids = new Set<string>();
      for (const topic of processor.topics) {
        if (task.partition >= (partitionCounts.get(topic) ?? 0)) continue;
        const fromOffset = task.positions.get(positionKey(topic, task.partition)) ?? 0;
        for (const record of await log.read(topic, { partition: task.partition, fromOffset }))
          ids.add(headerOf(record, Headers.id) ?? "");
      }
      task.unreadIds = ids;
    }
    const unread = task.unreadIds;
    return events.filter((event) => !unread.has(event.id));
  };

  const tick = async () => {
    if (stopped || !processor.tick) return;
    for (const task of [...tasks.values()]) {
      if (task.unsure) continue;
      const result = processor.tick(task.state, clock());
      if (result.emit.length > 0) {
        const events = await notOnLogYet(task, result.emit);
        try {
          await appendEvents(log, events);
        } catch (error) {
          task.unreadIds = undefined;
          throw error;
        }
      }
      task.state = result.state;
      applyPause(task);
    }
  };

  const saveSnapshot = async (task: Task<S>) => {
    if (!options.snapshots) return;
    task.sinceSnapshot = 0;
    await options.snapshots.save({
      runner: snapshotName(processor, task.partition),
      versions: versionsOf(processor),
      positions: Object.fromEntries(task.positions),
      events: task.applied,
      states: {
        [processor.name]: [
          ["state", processor.snapshotOf ? processor.snapshotOf(task.state) : task.state],
          ["seen", task.seen.list()],
        ],
      },
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
        if (!(error instanceof FencedError)) throw error;
      });
    }
  };

  const tellTasks = (taken: readonly number[], given: readonly number[]) =>
    options.onTasks?.(
      [...tasks.keys()].sort((a, b) => a - b),
      { taken, given },
    );

  /** Task `partition` as its group committed it, read from the log (waiting out an outage). */
  const rebuild = async (partition: number, paused: readonly string[] = []) => {
    const rebuilt = await untilAvailable(
      () => rebuildTask(log, processor, partition, tableNow(), options),
      isTransientError,
      { signal: stopping.signal },
    );
    const task: Task<S> = { ...rebuilt, sinceSnapshot: 0, paused };
    tasks.set(partition, task);
    applyPause(task);
  };

  const assign = async (partitions: readonly TopicPartition[]) => {
    const taken = [...new Set(partitions.map((tp) => tp.partition))].filter((p) => !tasks.has(p));
    for (const partition of taken) await rebuild(partition);
    if (taken.length > 0) tellTasks(taken, []);
    scheduleTick();
  };

  const revoke = async (partitions: readonly TopicPartition[]) => {
    const gone = new Set(partitions.map((tp) => tp.partition));
    const given = [...gone].filter((p) => tasks.has(p));
    for (const partition of gone) tasks.delete(partition);
    if (given.length > 0) tellTasks([], given);
    for (const [key, batch] of [...quiet])
      if (batch.events.some(({ record }) => gone.has(record.partition))) quiet.delete(key);
  };

  /** The table has everything appended before `timestamp` (read after it, allowing for clock skew). */
  const tableHolds = (timestamp: number) =>
    table !== undefined && table.caughtUpAt() > timestamp + clockSkewMs;

  const handleBatch = async (batch: EventBatch) => {
    for (const partition of new Set(batch.events.map(({ record }) => record.partition))) {
      const task = tasks.get(partition);
      if (task?.unsure) await rebuild(partition, task.paused);
    }
    const drafts = new Map<number, { task: Task<S>; next: S; taken: Set<string> }>();
    const emit: Envelope[] = [];
    let view = tableNow();
    for (const { record, event } of batch.events) {
      const task = tasks.get(record.partition);
      if (!task) continue; // taken away meanwhile: its commit is fenced, the new owner handles it
      let draft = drafts.get(task.partition);
      if (!draft) {
        draft = { task, next: task.state, taken: new Set() };
        drafts.set(task.partition, draft);
      }
      // Ids are remembered once the batch commits: a batch that fails is handed over again, not dropped.
      if (task.seen.has(event.id) || draft.taken.has(event.id)) continue;
      draft.taken.add(event.id);
      if (table && processor.table?.isBehindFor?.(view, event) && !tableHolds(record.timestamp)) {
        await table.catchUp();
        view = tableNow();
      }
      const result = processor.handle(draft.next, event, {
        now: record.timestamp,
        source: record,
        key: record.key,
        consumer: processor.name,
        table: view,
      });
      draft.next = result.state;
      emit.push(...result.emit);
    }
    for (const { record, reason } of batch.unreadable)
      if (tasks.has(record.partition)) emit.push(...(processor.answerUnreadable?.(record, reason) ?? []));
    const changed = [...drafts.values()].some((d) => d.next !== d.task.state);
    const partition = onePartition(batch);
    if (emit.length === 0 && !changed && partition !== undefined && quietCommitMs > 0) {
      batch.defer();
      quiet.set(partition, batch);
      if (!quietTimer) {
        quietTimer = setTimeout(
          () =>
            void exclusive(commitQuiet).catch((error) => {
              // Unreachable now: the partition's next commit, or a restart, covers these offsets.
              if (!isTransientError(error)) fail(error);
            }),
          quietCommitMs,
        );
        quietTimer.unref?.();
      }
    } else {
      try {
        await batch.commitWith(emit);
      } catch (error) {
        // A commit that failed may still have gone in (its answer lost with the broker): the states this
        // batch would have changed are read back from the log, which says what committed, before their
        // next input (by then the consumer has taken the partition over again and the commit is settled).
        for (const { task } of drafts.values()) task.unsure = true;
        throw error;
      }
      for (const { record } of batch.events) quiet.delete(positionKey(record.topic, record.partition));
    }
    for (const { task, next, taken } of drafts.values()) {
      task.state = next;
      for (const id of taken) task.seen.add(id);
    }
    for (const { record } of batch.events) {
      const task = tasks.get(record.partition);
      if (!task) continue;
      task.positions.set(positionKey(record.topic, record.partition), record.offset + 1);
      task.applied++;
      task.sinceSnapshot++;
    }
    for (const { task } of drafts.values()) {
      applyPause(task);
      if (options.snapshots && snapshotEvery > 0 && task.sinceSnapshot >= snapshotEvery)
        await saveSnapshot(task);
    }
  };

  const start = async () => {
    const topics = [...new Set([...processor.topics, ...(processor.table?.topics ?? [])])];
    // A processor started while the log cannot be reached (a broker or a cluster node down) waits for it,
    // as a running one does.
    const whenAvailable = <R>(work: () => Promise<R>) => untilAvailable(work, isTransientError);
    await whenAvailable(() => log.ensureTopics(topics.map((topic) => ({ topic }))));
    const counts = await whenAvailable(() =>
      Promise.all(
        processor.topics.map(async (topic) => ({ topic, partitions: await log.partitions(topic) })),
      ),
    );
    checkCopartitioned(processor.name, counts);
    partitionCounts = new Map(counts.map((c) => [c.topic, c.partitions]));
    const tableOf = processor.table;
    if (tableOf) table = await whenAvailable(() => openTable(log, tableOf, fail, clock));
    consumer = consumeEvents(
      log,
      {
        group: processor.name,
        topics: [...processor.topics],
        deadLetters: processor.deadLetters,
        maxBatch: options.maxBatch ?? 500,
        onAssigned: (partitions) => exclusive(() => assign(partitions)),
        onRevoked: (partitions) => exclusive(() => revoke(partitions)),
      },
      (batch) => exclusive(() => handleBatch(batch)).then(scheduleTick),
    );
    await Promise.race([consumer.joined, consumer.done]);
  };

  const ready = start();
  const done = ready
    .then(() => Promise.race([consumer!.done, failed]))
    .finally(() => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(quietTimer);
      table?.stop();
    });
  done.catch(() => undefined);

  return {
    ready,
    done,
    states: () => new Map([...tasks].map(([partition, task]) => [partition, task.state])),
    remembered: () => [...tasks.values()].reduce((sum, task) => sum + task.seen.size, 0),
    async stop() {
      stopped = true;
      stopping.abort();
      clearTimeout(timer);
      await ready.catch(() => undefined);
      // What changed nothing is committed before leaving, so a restart doesn't hand it over again.
      await exclusive(commitQuiet).catch(() => undefined);
      await consumer?.stop();
      await turn;
      clearTimeout(quietTimer);
      table?.stop();
    },
  };
};

export { defaultDedupCapacity };
