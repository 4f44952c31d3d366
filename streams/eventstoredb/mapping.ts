/**
 * How the Kafka-shaped log maps onto EventStoreDB streams — pure functions, no server.
 *
 *   records     `<ns><topic>-<partition>`        offset = stream revision (0, 1, 2, ...)
 *   topic setup `<ns>@topic/<topic>`             last event: the partition count
 *   checkpoints `<ns>@checkpoint/<group>`        last event: the group's committed offsets
 *
 * `@` and `/` never occur in Kafka topic names, so the three kinds cannot collide; no name starts
 * with `$` (EventStoreDB reserves those for system streams, writable only by admins).
 */
import { z } from "zod";
import { uuidV5 } from "../ids.ts";
import type { AppendRecord, LogRecord, Position } from "../log.ts";
import { partitionFor } from "../partition.ts";

export interface TopicPartition {
  topic: string;
  partition: number;
}

export const partitionStream = (namespace: string, { topic, partition }: TopicPartition): string =>
  `${namespace}${topic}-${partition}`;

export const topicStream = (namespace: string, topic: string): string => `${namespace}@topic/${topic}`;

export const checkpointStream = (namespace: string, group: string): string =>
  `${namespace}@checkpoint/${group}`;

const partitionSuffix = /^(.+)-(\d+)$/;

/** The topic and partition a record stream holds, or undefined for any other stream. */
export const parsePartitionStream = (namespace: string, stream: string): TopicPartition | undefined => {
  if (!stream.startsWith(namespace)) return undefined;
  const match = partitionSuffix.exec(stream.slice(namespace.length));
  if (!match || match[1]!.includes("@") || match[1]!.startsWith("$")) return undefined;
  return { topic: match[1]!, partition: Number(match[2]) };
};

export const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");

/** The server-side `$all` filter that lets through exactly the record streams of `topics`. */
export const recordStreamsRegex = (namespace: string, topics: readonly string[]): string =>
  `^${escapeRegex(namespace)}(?:${[...new Set(topics)].map(escapeRegex).join("|")})-\\d+$`;

/** Offsets are JavaScript numbers; revisions are 64-bit. 2^53 events in one stream is out of reach. */
export const offsetOfRevision = (revision: bigint): number => {
  if (revision < 0n || revision > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`stream revision ${revision} does not fit an offset`);
  }
  return Number(revision);
};

export const revisionOfOffset = (offset: number): bigint => {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`offset ${offset} is not valid`);
  return BigInt(offset);
};

/**
 * The expected revision that means "the partition's next offset is `nextOffset`":
 * `no_stream` before the first record, otherwise the revision of the record before it.
 */
export const expectedRevisionFor = (nextOffset: number): bigint | "no_stream" =>
  nextOffset === 0 ? "no_stream" : revisionOfOffset(nextOffset - 1);

/** The offsets of `count` records written by one append whose last record got `lastRevision`. */
export const offsetsOfAppend = (lastRevision: bigint, count: number): number[] => {
  const last = offsetOfRevision(lastRevision);
  return Array.from({ length: count }, (_, i) => last - count + 1 + i);
};

/** Records of one append grouped by the partition they route to, each group in append order. */
export const routeRecords = (
  records: readonly AppendRecord[],
  partitionsOf: (topic: string) => number,
): Map<string, { target: TopicPartition; indexes: number[] }> => {
  const groups = new Map<string, { target: TopicPartition; indexes: number[] }>();
  records.forEach((record, index) => {
    const target = { topic: record.topic, partition: partitionFor(record.key, partitionsOf(record.topic)) };
    const id = `${target.topic}\u0000${target.partition}`;
    const group = groups.get(id) ?? { target, indexes: [] };
    group.indexes.push(index);
    groups.set(id, group);
  });
  return groups;
};

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The EventStoreDB event id of a record: the dspex envelope id when it carries one (derived events
 * have deterministic ids, so a redelivered input re-appends the same ids and the server can drop the
 * copy), else `fallback` (deterministic for `commitWith` outputs, random otherwise).
 */
export const eventIdOf = (record: AppendRecord, fallback: () => string): string => {
  const id = record.headers?.["dspex-id"];
  return id && uuidPattern.test(id) ? id.toLowerCase() : fallback();
};

/** A stable id for the `index`-th output of the batch that ends at `last` in `group`. */
export const outputEventId = (group: string, last: readonly Position[], index: number): string =>
  uuidV5(
    `eventstoredb-output/${group}/${last
      .map((p) => `${p.topic}:${p.partition}:${p.offset}`)
      .sort()
      .join(",")}/${index}`,
  );

/** What a record keeps besides its bytes: stored as the event's JSON metadata. */
export const RecordMetadata = z.object({
  key: z.string(),
  headers: z.record(z.string(), z.string()).default({}),
});
export type RecordMetadata = z.infer<typeof RecordMetadata>;

export const recordMetadataOf = (record: AppendRecord): RecordMetadata => ({
  key: record.key,
  headers: record.headers ?? {},
});

/** The event type shown in the server's UI: the dspex type when the record carries one. */
export const eventTypeOf = (record: AppendRecord): string => record.headers?.["dspex-type"] || "dspex.record";

/** The fields of a stored event this backend reads back. */
export interface StoredEvent {
  streamId: string;
  revision: bigint;
  data: unknown;
  metadata: unknown;
  created: Date;
}

/** A stored event as a log record; undefined for events that are not dspex records. */
export const recordOfEvent = (namespace: string, event: StoredEvent): LogRecord | undefined => {
  const where = parsePartitionStream(namespace, event.streamId);
  const metadata = RecordMetadata.safeParse(event.metadata);
  if (!where || !metadata.success || !(event.data instanceof Uint8Array)) return undefined;
  return {
    ...where,
    offset: offsetOfRevision(event.revision),
    key: metadata.data.key,
    value: Buffer.from(event.data.buffer, event.data.byteOffset, event.data.byteLength),
    headers: metadata.data.headers,
    timestamp: event.created.getTime(),
  };
};

export const TopicConfigured = z.object({ topic: z.string(), partitions: z.number().int().positive() });
export type TopicConfigured = z.infer<typeof TopicConfigured>;
export const topicConfiguredType = "dspex.TopicConfigured";

/** The partition count to write, if any: topics only ever grow (shrinking would reroute keys). */
export const partitionsToConfigure = (current: number | undefined, wanted: number): number | undefined =>
  current === undefined || wanted > current ? Math.max(current ?? 0, wanted) : undefined;

/** A `$all` position as JSON can hold it (64-bit numbers as strings). */
export const AllPosition = z.object({ commit: z.string(), prepare: z.string() });
export type AllPosition = z.infer<typeof AllPosition>;

/**
 * A group's committed offsets, one event per commit; the last one is the whole truth.
 * `resume` is where the group's `$all` subscription may restart, valid only for `resume.topics`:
 * every record of those topics at or before that position is covered by `offsets`.
 */
export const GroupCommitted = z.object({
  group: z.string(),
  offsets: z.record(z.string(), z.record(z.string(), z.number().int().nonnegative())),
  resume: z.object({ position: AllPosition, topics: z.array(z.string()) }).optional(),
});
export type GroupCommitted = z.infer<typeof GroupCommitted>;
export const groupCommittedType = "dspex.GroupCommitted";

export const emptyCheckpoint = (group: string): GroupCommitted => ({ group, offsets: {} });

/**
 * The next checkpoint after committing `positions`. A commit from the group's own subscription
 * carries where it may resume; any other commit (a manual one, a seek) drops the resume point,
 * so the next start scans from the beginning and trusts the offsets alone.
 */
export const nextCheckpoint = (
  previous: GroupCommitted,
  positions: readonly Position[],
  resume?: GroupCommitted["resume"],
): GroupCommitted => {
  const offsets: GroupCommitted["offsets"] = Object.fromEntries(
    Object.entries(previous.offsets).map(([topic, partitions]) => [topic, { ...partitions }]),
  );
  for (const p of positions) {
    offsets[p.topic] = { ...offsets[p.topic], [String(p.partition)]: p.offset };
  }
  return resume ? { group: previous.group, offsets, resume } : { group: previous.group, offsets };
};

export const committedOffsets = (checkpoint: GroupCommitted, topic: string): Map<number, number> =>
  new Map(
    Object.entries(checkpoint.offsets[topic] ?? {})
      .map(([partition, offset]) => [Number(partition), offset] as [number, number])
      .sort(([a], [b]) => a - b),
  );

/** Where a group's `$all` subscription starts. */
export type StartPoint = "start" | "end" | AllPosition;

export const startPointOf = (
  checkpoint: GroupCommitted | undefined,
  topics: readonly string[],
  from: "beginning" | "end",
): StartPoint => {
  if (!checkpoint) return from === "end" ? "end" : "start";
  const covered = new Set(checkpoint.resume?.topics ?? []);
  if (checkpoint.resume && topics.every((t) => covered.has(t))) return checkpoint.resume.position;
  return "start";
};

/**
 * Whether a delivered record is already committed (a restart may replay a few, and a scan from the
 * start replays all of them). Partitions the group never committed start at `floor`: 0, or their
 * head when a group starts at the end.
 */
export const alreadyCommitted = (
  checkpoint: GroupCommitted | undefined,
  record: Position,
  floor: (tp: TopicPartition) => number = () => 0,
): boolean => {
  const next = checkpoint?.offsets[record.topic]?.[String(record.partition)] ?? floor(record);
  return record.offset < next;
};

export const allPositionToJson = (position: { commit: bigint; prepare: bigint }): AllPosition => ({
  commit: position.commit.toString(10),
  prepare: position.prepare.toString(10),
});

export const allPositionFromJson = (position: AllPosition): { commit: bigint; prepare: bigint } => ({
  commit: BigInt(position.commit),
  prepare: BigInt(position.prepare),
});
