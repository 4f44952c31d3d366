import type { IHeaders, KafkaMessage, Message, RecordMetadata } from "kafkajs";
import type { AppendRecord, LogRecord, Position } from "../log.ts";
import { LogUnavailableError } from "../log.ts";
import { partitionFor } from "../partition.ts";

export const toBuffer = (value: Uint8Array | string): Buffer =>
  typeof value === "string"
    ? Buffer.from(value, "utf8")
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength);

export const checkRecord = (record: AppendRecord): void => {
  if (typeof record.topic !== "string" || record.topic.length === 0)
    throw new TypeError("record topic is empty");
  if (typeof record.key !== "string") throw new TypeError(`record key for ${record.topic} must be a string`);
};

/** kafkajs header values are Buffers, strings or arrays of them; the port's are single strings. */
export const headersOf = (headers: IHeaders | undefined): Record<string, string> => {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const last = Array.isArray(value) ? value.at(-1) : value;
    if (last !== undefined) result[name] = last.toString();
  }
  return result;
};

export const toLogRecord = (topic: string, partition: number, message: KafkaMessage): LogRecord => ({
  topic,
  partition,
  offset: Number(message.offset),
  key: message.key?.toString("utf8") ?? "",
  value: message.value ?? Buffer.alloc(0),
  headers: headersOf(message.headers),
  timestamp: Number(message.timestamp),
});

/** A record bound for one partition of one physical topic. */
export interface RoutedRecord {
  /** Index of the record in the caller's list. */
  index: number;
  topic: string;
  physicalTopic: string;
  partition: number;
  message: Message & { partition: number };
  bytes: number;
}

/** Same key → same partition: the murmur2 of streams/partition.ts, like every backend and Java's client. */
export const routeRecords = (
  records: readonly AppendRecord[],
  partitionsOf: (topic: string) => number,
  physical: (topic: string) => string,
): RoutedRecord[] =>
  records.map((record, index) => {
    checkRecord(record);
    const value = toBuffer(record.value);
    const partition = partitionFor(record.key, partitionsOf(record.topic));
    return {
      index,
      topic: record.topic,
      physicalTopic: physical(record.topic),
      partition,
      message: { key: record.key, value, headers: { ...record.headers }, partition },
      bytes: value.byteLength + Buffer.byteLength(record.key) + 64,
    };
  });

/** Splits routed records into sends of at most `maxBytes` (one record over it goes alone). */
export const chunkBySize = (records: readonly RoutedRecord[], maxBytes: number): RoutedRecord[][] => {
  const chunks: RoutedRecord[][] = [];
  let current: RoutedRecord[] = [];
  let size = 0;
  for (const record of records) {
    if (current.length > 0 && size + record.bytes > maxBytes) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(record);
    size += record.bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
};

/** kafkajs sendBatch input: one entry per physical topic, messages in the caller's order. */
export const topicMessagesOf = (records: readonly RoutedRecord[]) => {
  const byTopic = new Map<string, Message[]>();
  for (const record of records) {
    const messages = byTopic.get(record.physicalTopic) ?? [];
    messages.push(record.message);
    byTopic.set(record.physicalTopic, messages);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
};

/**
 * The sends of an append outside a transaction: one partition each, at most `maxBytes`, each partition's
 * records in order. kafkajs retries a send that spans brokers by sending again to each broker that has not
 * answered, with the partitions mapped to their leaders anew: a partition already written whose leader
 * moved in between goes out a second time, under a new sequence number, so idempotence keeps both (seen as
 * doubled events in tests/reliability/cluster-kafka.test.ts). A send to one partition goes to one leader:
 * a retry repeats only what was not acknowledged.
 */
export const partitionSends = (records: readonly RoutedRecord[], maxBytes: number): RoutedRecord[][] => {
  const byPartition = new Map<string, RoutedRecord[]>();
  for (const record of records) {
    const id = `${record.physicalTopic}\u0000${record.partition}`;
    const group = byPartition.get(id) ?? [];
    group.push(record);
    byPartition.set(id, group);
  }
  return [...byPartition.values()].flatMap((group) => chunkBySize(group, maxBytes));
};

/**
 * The sends of a transaction: as few as `maxBytes` allows, since a partition sent alone costs the
 * transaction its own AddPartitionsToTxn and produce round trips. A partition kafkajs wrote twice (see
 * `partitionSends`) comes back twice in the broker's answer: `positionsOf` refuses it, and the transaction
 * is aborted, which takes both copies back, and repeated.
 */
export const transactionSends = chunkBySize;

/** Sends `sends` one after another; the positions come back in the order of the records routed. */
export const sendAll = async (
  sends: readonly RoutedRecord[][],
  send: (topicMessages: ReturnType<typeof topicMessagesOf>) => Promise<RecordMetadata[]>,
): Promise<Position[]> => {
  const positions: Position[] = [];
  for (const chunk of sends) {
    const sent = positionsOf(chunk, await send(topicMessagesOf(chunk)));
    chunk.forEach((record, i) => {
      positions[record.index] = sent[i]!;
    });
  }
  return positions;
};

/**
 * The offset of every record of one send: the broker returns the base offset of each partition's
 * batch, and records of a partition are stored in the order they were sent.
 */
export const positionsOf = (
  records: readonly RoutedRecord[],
  metadata: readonly RecordMetadata[],
): Position[] => {
  const base = new Map<string, number>();
  for (const m of metadata) {
    const id = `${m.topicName}\u0000${m.partition}`;
    if (base.has(id))
      throw new LogUnavailableError(
        `the broker wrote ${m.topicName}[${m.partition}] twice in one send (kafkajs sent it again to a new leader)`,
      );
    base.set(id, Number(m.baseOffset));
  }
  const next = new Map<string, number>();
  return records.map((record) => {
    const id = `${record.physicalTopic}\u0000${record.partition}`;
    const first = base.get(id);
    // A partition the broker left out of its answer was not written, or not acknowledged: the send is
    // repeated whole, after aborting it if it was a transaction.
    if (first === undefined || Number.isNaN(first))
      throw new LogUnavailableError(
        `the broker did not acknowledge ${record.physicalTopic}[${record.partition}]`,
      );
    const offset = next.get(id) ?? first;
    next.set(id, offset + 1);
    return { topic: record.topic, partition: record.partition, offset };
  });
};
