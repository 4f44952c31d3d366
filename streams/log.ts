import type { Observable } from "rxjs";

/** A record to append: the bytes are an encoded event (see codec.ts), but the log doesn't care. */
export interface AppendRecord {
  topic: string;
  key: string;
  value: Uint8Array | string;
  headers?: Record<string, string>;
}

export interface Position {
  topic: string;
  partition: number;
  offset: number;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface LogRecord extends Position {
  key: string;
  value: Buffer;
  headers: Record<string, string>;
  /** Milliseconds since the epoch, when the log stored it. */
  timestamp: number;
  /**
   * The value as UTF-8 text, where the backend holds it as text anyway (the embedded log, for values
   * appended as strings): saves a copy and a decode. Absent otherwise; use `textOf`.
   */
  readonly text?: string;
  /** One header, where the backend can find it without parsing them all; absent otherwise: use `headerOf`. */
  header?(name: string): string | undefined;
  /**
   * Where the backend knows this process's `encodeEvent` wrote the record (validated on the way in): the
   * event's id. A value holding that id needs no second validation (`decodeRecord`).
   */
  readonly validatedId?: string;
}

/** A record's value as text (UTF-8), without a copy where the backend already has it. */
export const textOf = (record: LogRecord): string => record.text ?? record.value.toString("utf8");

/** One header of a record, cheaply where the backend allows. */
export const headerOf = (record: LogRecord, name: string): string | undefined =>
  record.header ? record.header(name) : record.headers[name];

export interface TopicSpec {
  topic: string;
  partitions?: number;
}

export interface ReadOptions {
  partition?: number;
  /** First offset to read (inclusive); default 0. */
  fromOffset?: number;
  limit?: number;
}

/**
 * A commit refused because another member of the group owns the partition now: nothing of the batch was
 * written, and its records go to the new owner. Every backend throws a subclass of it.
 */
export class FencedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FencedError";
  }
}

/** The log cannot be reached now (a broker down, a file locked): the work can be retried as it is. */
export class LogUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LogUnavailableError";
  }
}

/** The errors kafkajs and SQLite raise for conditions that clear up by themselves. */
const transientNames = new Set([
  "KafkaJSNumberOfRetriesExceeded",
  "KafkaJSConnectionError",
  "KafkaJSRequestTimeoutError",
]);
const transientCodes = new Set(["SQLITE_BUSY", "SQLITE_LOCKED", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT"]);

/**
 * Whether an error (or what caused it) is a passing condition of the log — retry the same work later —
 * rather than a fault of the work itself.
 */
export const isTransientError = (error: unknown): boolean => {
  for (let at = error, depth = 0; at !== undefined && at !== null && depth < 8; depth++) {
    if (at instanceof LogUnavailableError) return true;
    const { name, code, retriable } = at as { name?: string; code?: string; retriable?: boolean };
    if (retriable === true || (name && transientNames.has(name)) || (code && transientCodes.has(code)))
      return true;
    at = (at as { cause?: unknown }).cause;
  }
  return false;
};

/** Records handed to a consumer together; they are committed together. */
export interface RecordBatch {
  records: LogRecord[];
  /**
   * Appends `outputs` and commits this batch's offsets in one atomic step
   * (one SQLite transaction; one Kafka transaction). The hook exactly-once processing uses. On Kafka,
   * readers see the outputs and the offsets a moment after it resolves (the coordinator writes the
   * transaction's markers after answering); a member taking the partition over waits for them.
   */
  commitWith(outputs: AppendRecord[]): Promise<Position[]>;
}

export interface ConsumeOptions {
  group: string;
  topics: string[];
  /** Where a group with no committed offset starts: the beginning (default) or the end. */
  from?: "beginning" | "end";
  /** Most records per batch. */
  maxBatch?: number;
  /** Commit each batch's offsets after the handler resolves, unless it called commitWith. Default true. */
  autoCommit?: boolean;
  signal?: AbortSignal;
  /**
   * Partitions given to this member, before any of their records is handed over (the handler waits for
   * it). Every backend assigns co-partitioned: partition p of every topic of the group goes to one member.
   */
  onAssigned?(partitions: TopicPartition[]): Promise<void> | void;
  /** Partitions taken from this member (to another one, or because it stops); a late commit of theirs is fenced. */
  onRevoked?(partitions: TopicPartition[]): Promise<void> | void;
}

export type BatchHandler = (batch: RecordBatch) => Promise<void> | void;

/** A running consumer: stop() finishes the batch in hand, then leaves the group. */
export interface Consumer {
  stop(): Promise<void>;
  /** Resolves when the consumer stops; rejects if the handler threw (nothing past it is committed). */
  done: Promise<void>;
  /** Resolves once it is a member of its group with its first assignment (which may be empty). */
  joined: Promise<void>;
  /**
   * Stops taking records of these partitions until they are resumed: they wait on the log (backpressure).
   * Records fetched before may still be handed over.
   */
  pause(partitions: readonly TopicPartition[]): void;
  resume(partitions: readonly TopicPartition[]): void;
}

/**
 * The port every backend implements (embedded SQLite, Kafka, EventStoreDB).
 * Order is kept per key (a key always lands on the same partition).
 */
export interface EventLog {
  readonly backend: string;
  ensureTopics(topics: TopicSpec[]): Promise<void>;
  append(records: AppendRecord[]): Promise<Position[]>;
  read(topic: string, options?: ReadOptions): Promise<LogRecord[]>;
  /** Pull-based consumption with backpressure: the next batch waits for the handler. */
  consume(options: ConsumeOptions, handler: BatchHandler): Consumer;
  /** Live tail of topics as an Observable (no group, nothing committed). */
  tail(topics: string[], options?: { from?: "beginning" | "end" }): Observable<LogRecord>;
  commit(group: string, positions: Position[]): Promise<void>;
  /** The next offset the group will read, per partition of the topic. */
  committed(group: string, topic: string): Promise<Map<number, number>>;
  /** How many partitions the topic has now (0 when it does not exist); creates nothing. */
  partitions(topic: string): Promise<number>;
  /**
   * Per partition of the topic, the offset the next record will get: where a group that read everything
   * has committed (on Kafka, transaction markers take offsets too: a group is done when its committed
   * offset reaches this end or the partition holds no record at or after it).
   */
  endOffsets(topic: string): Promise<Map<number, number>>;
  /** How many live members the group has now; undefined where the backend cannot tell. */
  liveMembers(group: string): Promise<number | undefined>;
  close(): Promise<void>;
}

/** Offsets to commit after a batch: one past the last record of each partition. */
export const nextPositions = (records: readonly LogRecord[]): Position[] => {
  const last = new Map<string, Position>();
  for (const r of records) {
    last.set(`${r.topic}\u0000${r.partition}`, {
      topic: r.topic,
      partition: r.partition,
      offset: r.offset + 1,
    });
  }
  return [...last.values()];
};

/** Same key → same partition, on every backend (Kafka's default partitioner is murmur2 too). */
export { partitionFor } from "./partition.ts";
