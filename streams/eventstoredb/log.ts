import { randomUUID } from "node:crypto";
import {
  type AllStreamResolvedEvent,
  ANY,
  type AppendExpectedRevision,
  BACKWARDS,
  binaryEvent,
  END,
  type EventData,
  EventStoreDBClient,
  jsonEvent,
  NO_STREAM,
  type ReadPosition,
  START,
  StreamNotFoundError,
  streamNameFilter,
  WrongExpectedVersionError,
} from "@eventstore/db-client";
import { Observable } from "rxjs";
import {
  type AppendRecord,
  type BatchHandler,
  type ConsumeOptions,
  type Consumer,
  type EventLog,
  FencedError,
  type LogRecord,
  nextPositions,
  type Position,
  type ReadOptions,
  type RecordBatch,
  type TopicSpec,
} from "../log.ts";
import { partitionFor } from "../partition.ts";
import { mergeByTime } from "../time-order.ts";
import { BatchReader } from "./batches.ts";
import {
  type AllPosition,
  allPositionFromJson,
  allPositionToJson,
  alreadyCommitted,
  checkpointStream,
  committedOffsets,
  emptyCheckpoint,
  eventIdOf,
  eventTypeOf,
  expectedRevisionFor,
  GroupCommitted,
  groupCommittedType,
  nextCheckpoint,
  offsetOfRevision,
  offsetsOfAppend,
  outputEventId,
  partitionStream,
  partitionsToConfigure,
  recordMetadataOf,
  recordOfEvent,
  recordStreamsRegex,
  revisionOfOffset,
  routeRecords,
  type StartPoint,
  type StoredEvent,
  startPointOf,
  TopicConfigured,
  type TopicPartition,
  topicConfiguredType,
  topicStream,
} from "./mapping.ts";

export const defaultEventStoreDbUrl = "esdb://127.0.0.1:2113?tls=false";

export interface EventStoreDbLogOptions {
  /** Connection string; default `DSPEX_EVENTSTOREDB_URL`, then esdb://127.0.0.1:2113?tls=false. */
  url?: string;
  /** Prefix of every stream this log touches: several isolated logs can share one server. */
  namespace?: string;
  /** Partitions of a topic first seen in an append. */
  defaultPartitions?: number;
}

/** An append whose expected revision no longer holds: someone else appended first. Nothing was written. */
export class ConcurrentAppendError extends Error {
  constructor(
    readonly stream: string,
    readonly expectedNextOffset: number,
    readonly actualNextOffset: number,
  ) {
    super(
      `${stream} moved on: expected next offset ${expectedNextOffset}, it is ${actualNextOffset}; nothing was written — read again and retry`,
    );
    this.name = "ConcurrentAppendError";
  }
}

/** Another member of the group committed since this one last did: its batch goes back to the log. */
export class CheckpointConflictError extends FencedError {
  constructor(group: string) {
    super(`group ${group} was committed by another member; restarting from its checkpoint`);
    this.name = "CheckpointConflictError";
  }
}

/** Where appendExpecting writes: the partition of `key`, which must be at `nextOffset`. */
export interface AppendGuard {
  topic: string;
  key: string;
  nextOffset: number;
}

const toBuffer = (value: Uint8Array | string): Buffer =>
  typeof value === "string"
    ? Buffer.from(value, "utf8")
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength);

const isNotFound = (error: unknown) => error instanceof StreamNotFoundError;

const nextOffsetOfRevision = (revision: bigint | "no_stream" | "stream_exists" | "any"): number =>
  typeof revision === "bigint" ? offsetOfRevision(revision) + 1 : 0;

const readPositionOf = (start: StartPoint): ReadPosition =>
  start === "start" ? START : start === "end" ? END : allPositionFromJson(start);

const checkRecord = (record: AppendRecord): void => {
  if (typeof record.topic !== "string" || record.topic.length === 0)
    throw new TypeError("record topic is empty");
  if (typeof record.key !== "string") throw new TypeError(`record key for ${record.topic} must be a string`);
};

export class EventStoreDbLog implements EventLog {
  readonly backend = "eventstoredb";
  readonly namespace: string;
  private readonly client: EventStoreDBClient;
  private readonly defaultPartitions: number;
  private readonly partitionCounts = new Map<string, number>();
  private readonly consumers = new Set<Consumer>();
  private closed = false;

  constructor(options: EventStoreDbLogOptions = {}) {
    const url = options.url ?? process.env.DSPEX_EVENTSTOREDB_URL ?? defaultEventStoreDbUrl;
    this.client = EventStoreDBClient.connectionString(url);
    this.namespace = options.namespace ?? "";
    this.defaultPartitions = options.defaultPartitions ?? 1;
  }

  /** The last event of a stream and its revision, or undefined when the stream doesn't exist. */
  private async lastEvent(stream: string): Promise<{ data: unknown; revision: bigint } | undefined> {
    try {
      for await (const resolved of this.client.readStream(stream, {
        direction: BACKWARDS,
        fromRevision: END,
        maxCount: 1,
      })) {
        if (resolved.event) return { data: resolved.event.data, revision: resolved.event.revision };
      }
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    return undefined;
  }

  private async configuredPartitions(topic: string): Promise<{ partitions?: number; revision?: bigint }> {
    const last = await this.lastEvent(topicStream(this.namespace, topic));
    if (!last) return {};
    return { partitions: TopicConfigured.parse(last.data).partitions, revision: last.revision };
  }

  /** Grows a topic to `wanted` partitions; safe against other processes doing the same. */
  private async configureTopic(topic: string, wanted: number): Promise<number> {
    for (;;) {
      const current = await this.configuredPartitions(topic);
      const next = partitionsToConfigure(current.partitions, wanted);
      if (next === undefined) return current.partitions!;
      try {
        await this.client.appendToStream(
          topicStream(this.namespace, topic),
          jsonEvent({
            type: topicConfiguredType,
            data: { topic, partitions: next } satisfies TopicConfigured,
          }),
          { expectedRevision: current.revision ?? NO_STREAM },
        );
        return next;
      } catch (error) {
        if (!(error instanceof WrongExpectedVersionError)) throw error;
      }
    }
  }

  async ensureTopics(topics: TopicSpec[]): Promise<void> {
    for (const { topic, partitions } of topics) {
      this.partitionCounts.set(topic, await this.configureTopic(topic, partitions ?? this.defaultPartitions));
    }
  }

  async partitions(topic: string): Promise<number> {
    return (await this.configuredPartitions(topic)).partitions ?? 0;
  }

  private async partitionsOf(topic: string): Promise<number> {
    const cached = this.partitionCounts.get(topic);
    if (cached !== undefined) return cached;
    const count = await this.configureTopic(topic, this.defaultPartitions);
    this.partitionCounts.set(topic, count);
    return count;
  }

  /** Partition counts of every topic in `records`, configuring unknown topics as the embedded log does. */
  private async knownPartitions(records: readonly AppendRecord[]): Promise<(topic: string) => number> {
    const counts = new Map<string, number>();
    for (const topic of new Set(records.map((r) => r.topic)))
      counts.set(topic, await this.partitionsOf(topic));
    return (topic) => counts.get(topic)!;
  }

  private eventsOf(
    records: readonly AppendRecord[],
    indexes: readonly number[],
    idOf: (index: number) => string,
  ): EventData[] {
    return indexes.map((i) => {
      const record = records[i]!;
      return binaryEvent({
        id: eventIdOf(record, () => idOf(i)),
        type: eventTypeOf(record),
        data: toBuffer(record.value),
        metadata: recordMetadataOf(record),
      });
    });
  }

  /**
   * One append per partition stream (each atomic on its own, run side by side); a batch spanning
   * several partitions is not atomic as a whole — see docs/eventstoredb.md.
   */
  private async appendRecords(
    records: readonly AppendRecord[],
    idOf: (index: number) => string = () => randomUUID(),
  ): Promise<Position[]> {
    if (records.length === 0) return [];
    records.forEach(checkRecord);
    const routes = routeRecords(records, await this.knownPartitions(records));
    const positions: Position[] = new Array(records.length);
    await Promise.all(
      [...routes.values()].map(async ({ target, indexes }) => {
        const result = await this.client.appendToStream(
          partitionStream(this.namespace, target),
          this.eventsOf(records, indexes, idOf),
          { expectedRevision: ANY },
        );
        offsetsOfAppend(result.nextExpectedRevision, indexes.length).forEach((offset, n) => {
          positions[indexes[n]!] = { ...target, offset };
        });
      }),
    );
    return positions;
  }

  append(records: AppendRecord[]): Promise<Position[]> {
    return this.appendRecords(records);
  }

  /**
   * Appends `records` only if the partition of `guard.key` is still at `guard.nextOffset` — the
   * optimistic concurrency check for variable changes. Every record must route to that partition;
   * the append is one atomic write. A concurrent append to the same partition (any key) makes it
   * throw ConcurrentAppendError with nothing written: fold again from `actualNextOffset` and retry.
   */
  async appendExpecting(guard: AppendGuard, records: AppendRecord[]): Promise<Position[]> {
    records.forEach(checkRecord);
    const partitions = await this.partitionsOf(guard.topic);
    const target: TopicPartition = { topic: guard.topic, partition: partitionFor(guard.key, partitions) };
    const stray = records.find(
      (r) => r.topic !== target.topic || partitionFor(r.key, partitions) !== target.partition,
    );
    if (stray) {
      throw new TypeError(
        `appendExpecting writes one partition: ${stray.topic}/${stray.key} does not route to ${target.topic}[${target.partition}]`,
      );
    }
    const stream = partitionStream(this.namespace, target);
    try {
      const result = await this.client.appendToStream(
        stream,
        this.eventsOf(
          records,
          records.map((_, i) => i),
          () => randomUUID(),
        ),
        { expectedRevision: expectedRevisionFor(guard.nextOffset) as AppendExpectedRevision },
      );
      return offsetsOfAppend(result.nextExpectedRevision, records.length).map((offset) => ({
        ...target,
        offset,
      }));
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError)) throw error;
      throw new ConcurrentAppendError(stream, guard.nextOffset, nextOffsetOfRevision(error.actualVersion));
    }
  }

  private async readPartition(tp: TopicPartition, fromOffset: number, limit?: number): Promise<LogRecord[]> {
    const records: LogRecord[] = [];
    if (limit === 0) return records;
    try {
      for await (const resolved of this.client.readStream(partitionStream(this.namespace, tp), {
        fromRevision: revisionOfOffset(fromOffset),
        ...(limit !== undefined && limit >= 0 ? { maxCount: limit } : {}),
      })) {
        const record = resolved.event && recordOfEvent(this.namespace, resolved.event as StoredEvent);
        if (record) records.push(record);
      }
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    return records;
  }

  async read(topic: string, options: ReadOptions = {}): Promise<LogRecord[]> {
    const from = options.fromOffset ?? 0;
    const limit = options.limit !== undefined && options.limit >= 0 ? options.limit : undefined;
    if (options.partition !== undefined)
      return this.readPartition({ topic, partition: options.partition }, from, limit);
    const { partitions = 0 } = await this.configuredPartitions(topic);
    const perPartition = await Promise.all(
      Array.from({ length: partitions }, (_, partition) =>
        this.readPartition({ topic, partition }, from, limit),
      ),
    );
    const merged = mergeByTime(perPartition, (record) => record.timestamp);
    return limit === undefined ? merged : merged.slice(0, limit);
  }

  private async readCheckpoint(group: string): Promise<{ checkpoint?: GroupCommitted; revision?: bigint }> {
    const last = await this.lastEvent(checkpointStream(this.namespace, group));
    return last ? { checkpoint: GroupCommitted.parse(last.data), revision: last.revision } : {};
  }

  /** Appends the next checkpoint if the stream is still at `revision`; returns the new revision. */
  private async writeCheckpoint(checkpoint: GroupCommitted, revision: bigint | undefined): Promise<bigint> {
    const stream = checkpointStream(this.namespace, checkpoint.group);
    const result = await this.client.appendToStream(
      stream,
      jsonEvent({ type: groupCommittedType, data: checkpoint }),
      { expectedRevision: revision ?? NO_STREAM },
    );
    // Only the latest checkpoint matters; the server may scavenge older ones.
    if (revision === undefined) await this.client.setStreamMetadata(stream, { maxCount: 64 });
    return result.nextExpectedRevision;
  }

  async commit(group: string, positions: Position[]): Promise<void> {
    for (;;) {
      const { checkpoint, revision } = await this.readCheckpoint(group);
      try {
        await this.writeCheckpoint(nextCheckpoint(checkpoint ?? emptyCheckpoint(group), positions), revision);
        return;
      } catch (error) {
        if (!(error instanceof WrongExpectedVersionError)) throw error;
      }
    }
  }

  async endOffsets(topic: string): Promise<Map<number, number>> {
    const heads = await this.heads([topic]);
    return new Map([...heads].map(([key, head]) => [Number(key.split("\u0000")[1]), head]));
  }

  /** Members are not registered anywhere on EventStoreDB. */
  async liveMembers(): Promise<undefined> {
    return undefined;
  }

  async committed(group: string, topic: string): Promise<Map<number, number>> {
    const { checkpoint } = await this.readCheckpoint(group);
    return checkpoint ? committedOffsets(checkpoint, topic) : new Map();
  }

  /** The next offset of every partition of `topics`: where a group that starts at the end begins. */
  private async heads(topics: readonly string[]): Promise<Map<string, number>> {
    const heads = new Map<string, number>();
    for (const topic of topics) {
      for (let partition = 0; partition < (await this.partitionsOf(topic)); partition++) {
        const last = await this.lastEvent(partitionStream(this.namespace, { topic, partition }));
        heads.set(`${topic}\u0000${partition}`, last ? offsetOfRevision(last.revision) + 1 : 0);
      }
    }
    return heads;
  }

  private subscribe(topics: readonly string[], start: StartPoint) {
    return this.client.subscribeToAll({
      fromPosition: readPositionOf(start),
      filter: streamNameFilter({ regex: recordStreamsRegex(this.namespace, topics) }),
    });
  }

  consume(options: ConsumeOptions, handler: BatchHandler): Consumer {
    const { group, topics, from = "beginning", maxBatch = 500, autoCommit = true } = options;
    const abort = new AbortController();
    options.signal?.addEventListener("abort", () => abort.abort(), { once: true });

    /** One subscription from the group's checkpoint; returns false when it ended for good. */
    const runFromCheckpoint = async (): Promise<boolean> => {
      let { checkpoint, revision } = await this.readCheckpoint(group);
      const start = startPointOf(checkpoint, topics, from);
      const heads = checkpoint && from === "end" ? await this.heads(topics) : undefined;
      const floor = (tp: TopicPartition) => heads?.get(`${tp.topic}\u0000${tp.partition}`) ?? 0;
      const startedFrom = checkpoint;
      // The last `$all` position before which every record of `topics` is committed.
      let safeResume: AllPosition | undefined = typeof start === "object" ? start : undefined;
      let gap = false;
      // Every member of a group reads every partition here (one subscription to $all): all of them are its.
      const counts = await Promise.all(topics.map(async (topic) => this.partitionsOf(topic)));
      await options.onAssigned?.(
        topics.flatMap((topic, i) =>
          Array.from({ length: counts[i]! }, (_, partition) => ({ topic, partition })),
        ),
      );
      const subscription = this.subscribe(topics, start);
      const reader = new BatchReader<AllStreamResolvedEvent>(subscription);
      try {
        while (!abort.signal.aborted && !this.closed) {
          const events = await reader.take(maxBatch, abort.signal);
          if (!events) return false;
          const records = events
            .map((e) => e.event && recordOfEvent(this.namespace, e.event as StoredEvent))
            .filter((r): r is LogRecord => r !== undefined && !alreadyCommitted(startedFrom, r, floor));
          if (records.length === 0) continue;
          const lastPosition = events.at(-1)!.event?.position;
          const offsets = nextPositions(records);
          const commitBatch = async () => {
            if (!gap && lastPosition) safeResume = allPositionToJson(lastPosition);
            const next = nextCheckpoint(
              checkpoint ?? emptyCheckpoint(group),
              offsets,
              safeResume && { position: safeResume, topics: [...topics] },
            );
            try {
              revision = await this.writeCheckpoint(next, revision);
            } catch (error) {
              if (error instanceof WrongExpectedVersionError) throw new CheckpointConflictError(group);
              throw error;
            }
            checkpoint = next;
          };
          let committed = false;
          const batch: RecordBatch = {
            records,
            commitWith: async (outputs) => {
              committed = true;
              const written = await this.appendRecords(outputs, (i) => outputEventId(group, offsets, i));
              await commitBatch();
              return written;
            },
          };
          await handler(batch);
          if (!committed && autoCommit) {
            committed = true;
            await commitBatch();
          }
          if (!committed) gap = true;
        }
        return false;
      } catch (error) {
        if (error instanceof CheckpointConflictError) return true;
        throw error;
      } finally {
        await subscription.unsubscribe().catch(() => undefined);
      }
    };

    const run = async () => {
      await new Promise((started) => setImmediate(started));
      while (!abort.signal.aborted && !this.closed && (await runFromCheckpoint()));
    };

    const done = run();
    const consumer: Consumer = {
      done,
      // Every member reads everything here: it is in as soon as it runs.
      joined: Promise.resolve(),
      stop: async () => {
        abort.abort();
        await done.catch(() => undefined);
        this.consumers.delete(consumer);
      },
      // One subscription carries every partition: a paused one's records still arrive (docs/eventstoredb.md).
      pause: () => undefined,
      resume: () => undefined,
    };
    this.consumers.add(consumer);
    done.catch(() => this.consumers.delete(consumer));
    return consumer;
  }

  tail(topics: string[], options: { from?: "beginning" | "end" } = {}): Observable<LogRecord> {
    return new Observable<LogRecord>((subscriber) => {
      const subscription = this.subscribe(topics, options.from === "end" ? "end" : "start");
      subscription.on("data", (resolved: AllStreamResolvedEvent) => {
        const record = resolved.event && recordOfEvent(this.namespace, resolved.event as StoredEvent);
        if (record) subscriber.next(record);
      });
      subscription.on("error", (error) => subscriber.error(error));
      subscription.on("end", () => subscriber.complete());
      return () => void subscription.unsubscribe().catch(() => undefined);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.consumers].map((c) => c.stop()));
    this.closed = true;
    await this.client.dispose();
  }
}

export const openEventStoreDbLog = (options: EventStoreDbLogOptions = {}): EventStoreDbLog =>
  new EventStoreDbLog(options);
