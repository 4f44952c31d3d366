import { EventEmitter } from "node:events";
import { mkdirSync, realpathSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { Observable } from "rxjs";
import {
  assignmentChange,
  assignTasks,
  partitionsOfTasks,
  taskCount,
  topicPartitionId,
} from "../assignment.ts";
import { type Availability, availability } from "../availability.ts";
import { Headers, isEncodedEvent } from "../codec.ts";
import { newId } from "../ids.ts";
import {
  type AppendRecord,
  type BatchHandler,
  type ConsumeOptions,
  type Consumer,
  type EventLog,
  FencedError,
  isTransientError,
  type LogRecord,
  nextPositions,
  type Position,
  type ReadOptions,
  type RecordBatch,
  type TopicPartition,
  type TopicSpec,
} from "../log.ts";
import { partitionFor } from "../partition.ts";
import { mergeByTime } from "../time-order.ts";
import { partitionTableSql, schemaSql } from "./schema.ts";

const partitionId = topicPartitionId;

export interface EmbeddedLogOptions {
  /** The SQLite file; created with its folder when missing. */
  path: string;
  /** Partitions of a topic first seen in an append. */
  defaultPartitions?: number;
  /** `full` syncs every commit to disk (survives power loss); `normal` survives process crashes. */
  durability?: "normal" | "full";
  /** Largest record value accepted, in bytes. */
  maxRecordBytes?: number;
  /** A member that has not beaten its heart for this long loses its partitions. */
  sessionTimeoutMs?: number;
  heartbeatMs?: number;
  /** Longest wait between polls for records appended by other processes. */
  maxPollIntervalMs?: number;
}

/** A commit from a member that no longer owns the partition: its batch goes to the new owner. */
export class PartitionLostError extends FencedError {
  constructor(group: string, tp: TopicPartition) {
    super(
      `consumer lost ${tp.topic}[${tp.partition}] in group ${group} to another member; batch not committed`,
    );
    this.name = "PartitionLostError";
  }
}

export class RecordTooLargeError extends Error {
  constructor(topic: string, size: number, limit: number) {
    super(
      `record for ${topic} is ${size} bytes, over the limit of ${limit}: split it or raise maxRecordBytes`,
    );
    this.name = "RecordTooLargeError";
  }
}

/**
 * Wakes consumers of the same file in this process once something is appended: once per turn of the event
 * loop, so the appends of one turn reach a consumer in one batch rather than one wake-up each.
 */
class AppendSignal extends EventEmitter {
  private scheduled = false;
  appended(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.emit("append");
    });
  }
}
const appendSignals = new Map<string, AppendSignal>();
const signalFor = (path: string): AppendSignal => {
  let signal = appendSignals.get(path);
  if (!signal) {
    signal = new AppendSignal();
    signal.setMaxListeners(0);
    appendSignals.set(path, signal);
  }
  return signal;
};

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
};

/** Text stays text (SQLite stores it as TEXT, read back without a copy); bytes are stored as a BLOB. */
const toStored = (value: Uint8Array | string): Buffer | string =>
  typeof value === "string" ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);

const byteLength = (value: Buffer | string): number =>
  typeof value === "string" ? Buffer.byteLength(value, "utf8") : value.byteLength;

type RecordRow = [offset: number, key: string, value: Buffer | string, headers: string | null, ts: number];

const noHeaders: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * The value of `name` in headers as JSON.stringify wrote them, when it is the first key and holds no
 * escapes (how every record this log writes from `encodeEvent` looks); undefined: parse them all.
 */
const firstHeader = (raw: string, name: string): string | undefined => {
  const prefixLength = name.length + 5;
  if (raw.length <= prefixLength || raw.charCodeAt(0) !== 123 /* { */ || raw.charCodeAt(1) !== 34 /* " */)
    return undefined;
  if (!raw.startsWith(name, 2) || !raw.startsWith('":"', name.length + 2)) return undefined;
  const end = raw.indexOf('"', prefixLength);
  if (end < 0) return undefined;
  const value = raw.slice(prefixLength, end);
  return value.includes("\\") ? undefined : value;
};

/** How many validated appends the log remembers, for `validatedId` (a few MB). */
const maxValidatedRemembered = 50_000;

const positionId = (topic: string, partition: number, offset: number) =>
  `${topic}\u0000${partition}\u0000${offset}`;

/**
 * A stored record. Its headers are parsed only when read (replays rarely need them); a value stored
 * as text is handed over as `text`, and turned into bytes only when `value` is read.
 */
class StoredRecord implements LogRecord {
  private parsedHeaders: Record<string, string> | undefined;
  readonly offset: number;
  readonly key: string;
  readonly timestamp: number;
  readonly text: string | undefined;
  private bytes: Buffer | undefined;
  private readonly rawHeaders: string | null;

  readonly validatedId: string | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    row: RecordRow,
    validatedHere: ReadonlyMap<string, string>,
  ) {
    const value = row[2];
    this.validatedId =
      validatedHere.size > 0 ? validatedHere.get(positionId(topic, partition, row[0])) : undefined;
    this.offset = row[0];
    this.key = row[1];
    this.rawHeaders = row[3];
    this.timestamp = row[4];
    if (typeof value === "string") this.text = value;
    else this.bytes = value;
  }

  get value(): Buffer {
    if (this.bytes === undefined) this.bytes = Buffer.from(this.text!, "utf8");
    return this.bytes;
  }

  get headers(): Record<string, string> {
    if (this.parsedHeaders === undefined) {
      this.parsedHeaders = this.rawHeaders === null ? noHeaders : JSON.parse(this.rawHeaders);
    }
    return this.parsedHeaders!;
  }

  header(name: string): string | undefined {
    if (this.parsedHeaders !== undefined || this.rawHeaders === null) return this.headers[name];
    return firstHeader(this.rawHeaders, name) ?? this.headers[name];
  }
}

interface PartitionTable {
  insert: Database.Statement;
  readFrom: Database.Statement;
  head: Database.Statement;
}

export class EmbeddedLog implements EventLog {
  readonly backend = "embedded";
  readonly path: string;
  private readonly db: Database.Database;
  private readonly signal: AppendSignal;
  private readonly partitionCounts = new Map<string, number>();
  /** Records this process appended, per topic (a waiter's "anything new?" check, with data_version). */
  private readonly appendedHere = new Map<string, number>();
  /** Positions of the events this process validated and appended here, and their ids (the latest ones). */
  private readonly validatedHere = new Map<string, string>();
  private readonly options: Required<Omit<EmbeddedLogOptions, "path">>;
  private readonly consumers = new Set<Consumer>();
  private closed = false;
  /** One line when the file cannot be written (locked), one when it can again. */
  private readonly link: Availability;

  constructor(options: EmbeddedLogOptions) {
    this.options = {
      defaultPartitions: 1,
      durability: "normal",
      maxRecordBytes: 1024 * 1024,
      sessionTimeoutMs: 30_000,
      heartbeatMs: 500,
      maxPollIntervalMs: 20,
      ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
    };
    mkdirSync(dirname(resolve(options.path)), { recursive: true });
    this.db = new Database(options.path, { timeout: 15_000 });
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("cache_size = -65536");
    this.db.pragma("temp_store = MEMORY");
    this.db.pragma(`synchronous = ${this.options.durability === "full" ? "FULL" : "NORMAL"}`);
    this.db.exec(schemaSql);
    this.path = realpathSync(options.path);
    this.signal = signalFor(this.path);
    this.link = availability(`the embedded log ${this.path}`, (message) =>
      process.stderr.write(`dspex: ${message}\n`),
    );
  }

  private readonly stmt = {
    topic: () =>
      this.db.prepare<[string], { partitions: number }>("SELECT partitions FROM topics WHERE topic = ?"),
    createTopic: () =>
      this.db.prepare("INSERT INTO topics (topic, partitions) VALUES (?, ?) ON CONFLICT (topic) DO NOTHING"),
    growTopic: () => this.db.prepare("UPDATE topics SET partitions = max(partitions, ?) WHERE topic = ?"),
    partitionId: () =>
      this.db.prepare<[string, number], { id: number }>(
        "SELECT id FROM partitions WHERE topic = ? AND partition = ?",
      ),
    addPartition: () =>
      this.db.prepare("INSERT INTO partitions (topic, partition) VALUES (?, ?) ON CONFLICT DO NOTHING"),
    committed: () =>
      this.db.prepare<[string, string], { partition: number; next_offset: number }>(
        "SELECT partition, next_offset FROM group_offsets WHERE grp = ? AND topic = ?",
      ),
    commit: () =>
      this.db.prepare(
        "INSERT INTO group_offsets (grp, topic, partition, next_offset) VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
      ),
    heartbeat: () =>
      this.db.prepare(
        "INSERT INTO group_members (grp, member, pid, heartbeat) VALUES (?, ?, ?, ?) ON CONFLICT (grp, member) DO UPDATE SET heartbeat = excluded.heartbeat",
      ),
    members: () =>
      this.db.prepare<[string], { member: string; pid: number; heartbeat: number }>(
        "SELECT member, pid, heartbeat FROM group_members WHERE grp = ?",
      ),
    dropMember: () => this.db.prepare("DELETE FROM group_members WHERE grp = ? AND member = ?"),
    assignments: () =>
      this.db.prepare<[string], { topic: string; partition: number; member: string }>(
        "SELECT topic, partition, member FROM group_assignments WHERE grp = ?",
      ),
    owner: () =>
      this.db.prepare<[string, string, number], { member: string }>(
        "SELECT member FROM group_assignments WHERE grp = ? AND topic = ? AND partition = ?",
      ),
    clearAssignment: () =>
      this.db.prepare("DELETE FROM group_assignments WHERE grp = ? AND topic = ? AND partition = ?"),
    assign: () =>
      this.db.prepare(
        "INSERT INTO group_assignments (grp, topic, partition, member) VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, partition) DO UPDATE SET member = excluded.member",
      ),
    dropAssignments: () => this.db.prepare("DELETE FROM group_assignments WHERE grp = ? AND member = ?"),
  };
  private readonly prepared = new Map<string, Database.Statement>();
  private readonly tables = new Map<string, PartitionTable>();

  /** The statements of one partition's table; `create` makes the table if it doesn't exist. */
  private tableOf(tp: TopicPartition, create: boolean): PartitionTable | undefined {
    const id = partitionId(tp);
    const known = this.tables.get(id);
    if (known) return known;
    let row = this.sql("partitionId").get(tp.topic, tp.partition);
    if (!row && !create) return undefined;
    if (!row) {
      this.sql("addPartition").run(tp.topic, tp.partition);
      row = this.sql("partitionId").get(tp.topic, tp.partition)!;
    }
    const name = `p${row.id}`;
    this.db.exec(partitionTableSql(name));
    const table: PartitionTable = {
      insert: this.db.prepare(`INSERT INTO ${name} (offset, key, value, headers, ts) VALUES (?, ?, ?, ?, ?)`),
      readFrom: this.db
        .prepare(
          `SELECT offset, key, value, headers, ts FROM ${name} WHERE offset >= ? ORDER BY offset LIMIT ?`,
        )
        .raw(),
      head: this.db.prepare(`SELECT coalesce(max(offset) + 1, 0) AS head FROM ${name}`).pluck(),
    };
    this.tables.set(id, table);
    return table;
  }

  private readFrom(tp: TopicPartition, fromOffset: number, limit: number): LogRecord[] {
    const table = this.tableOf(tp, false);
    if (!table) return [];
    return (table.readFrom.all(fromOffset, limit) as RecordRow[]).map(
      (row) => new StoredRecord(tp.topic, tp.partition, row, this.validatedHere),
    );
  }
  private sql<K extends keyof EmbeddedLog["stmt"]>(name: K): ReturnType<EmbeddedLog["stmt"][K]> {
    let statement = this.prepared.get(name);
    if (!statement) {
      statement = this.stmt[name]() as Database.Statement;
      this.prepared.set(name, statement);
    }
    return statement as ReturnType<EmbeddedLog["stmt"][K]>;
  }

  async ensureTopics(topics: TopicSpec[]): Promise<void> {
    this.db
      .transaction(() => {
        for (const { topic, partitions } of topics) {
          const count = partitions ?? this.options.defaultPartitions;
          this.sql("createTopic").run(topic, count);
          this.sql("growTopic").run(count, topic);
          this.partitionCounts.delete(topic);
        }
      })
      .immediate();
  }

  private partitionsOf(topic: string): number {
    const cached = this.partitionCounts.get(topic);
    if (cached !== undefined) return cached;
    let row = this.sql("topic").get(topic);
    if (!row) {
      this.sql("createTopic").run(topic, this.options.defaultPartitions);
      row = this.sql("topic").get(topic)!;
    }
    this.partitionCounts.set(topic, row.partitions);
    return row.partitions;
  }

  private checkRecord(record: AppendRecord): Buffer | string {
    if (typeof record.topic !== "string" || record.topic.length === 0)
      throw new TypeError("record topic is empty");
    if (typeof record.key !== "string")
      throw new TypeError(`record key for ${record.topic} must be a string`);
    const value = toStored(record.value);
    const size = byteLength(value);
    if (size > this.options.maxRecordBytes) {
      throw new RecordTooLargeError(record.topic, size, this.options.maxRecordBytes);
    }
    return value;
  }

  /** Inserts records; must run inside a write transaction. */
  private insertAll(records: readonly AppendRecord[]): Position[] {
    const values = records.map((r) => this.checkRecord(r));
    const heads = new Map<PartitionTable, number>();
    const now = Date.now();
    const routes = new Map<string, { partition: number; table: PartitionTable }>();
    return records.map((record, i) => {
      const routeKey = `${record.topic}\u0000${record.key}`;
      let route = routes.get(routeKey);
      if (!route) {
        const partition = partitionFor(record.key, this.partitionsOf(record.topic));
        route = { partition, table: this.tableOf({ topic: record.topic, partition }, true)! };
        routes.set(routeKey, route);
      }
      const { partition, table } = route;
      const offset = heads.get(table) ?? (table.head.get() as number);
      heads.set(table, offset + 1);
      const headers =
        record.headers && Object.keys(record.headers).length > 0 ? JSON.stringify(record.headers) : null;
      table.insert.run(offset, record.key, values[i], headers, now);
      this.appendedHere.set(record.topic, (this.appendedHere.get(record.topic) ?? 0) + 1);
      return { topic: record.topic, partition, offset };
    });
  }

  private writeCommits(group: string, positions: readonly Position[], member?: string): void {
    for (const p of positions) {
      if (member !== undefined && this.sql("owner").get(group, p.topic, p.partition)?.member !== member) {
        throw new PartitionLostError(group, p);
      }
      this.sql("commit").run(group, p.topic, p.partition, p.offset);
    }
  }

  async append(records: AppendRecord[]): Promise<Position[]> {
    if (records.length === 0) return [];
    const positions = this.db.transaction(() => this.insertAll(records)).immediate();
    this.rememberValidated(records, positions);
    this.signal.appended();
    return positions;
  }

  /** Once their transaction committed: which of the records were events this process validated, where. */
  private rememberValidated(records: readonly AppendRecord[], positions: readonly Position[]): void {
    records.forEach((record, i) => {
      const id = isEncodedEvent(record) ? record.headers?.[Headers.id] : undefined;
      if (id === undefined) return;
      const { topic, partition, offset } = positions[i]!;
      this.validatedHere.set(positionId(topic, partition, offset), id);
    });
    // The oldest go first: consumers read records soon after they are appended.
    for (const oldest of this.validatedHere.keys()) {
      if (this.validatedHere.size <= maxValidatedRemembered) break;
      this.validatedHere.delete(oldest);
    }
  }

  async read(topic: string, options: ReadOptions = {}): Promise<LogRecord[]> {
    const from = options.fromOffset ?? 0;
    const limit = options.limit ?? -1;
    if (options.partition !== undefined)
      return this.readFrom({ topic, partition: options.partition }, from, limit);
    const merged = mergeByTime(
      Array.from({ length: this.partitionsOf(topic) }, (_, partition) =>
        this.readFrom({ topic, partition }, from, limit),
      ),
      (record) => record.timestamp,
    );
    return limit < 0 ? merged : merged.slice(0, limit);
  }

  async commit(group: string, positions: Position[]): Promise<void> {
    this.db.transaction(() => this.writeCommits(group, positions)).immediate();
  }

  async partitions(topic: string): Promise<number> {
    return this.sql("topic").get(topic)?.partitions ?? 0;
  }

  async committed(group: string, topic: string): Promise<Map<number, number>> {
    return new Map(
      this.sql("committed")
        .all(group, topic)
        .map((r) => [r.partition, r.next_offset]),
    );
  }

  /** Joins (or refreshes) the group and rebalances it; returns this member's partitions. */
  private syncGroup(group: string, member: string, topics: readonly string[]): TopicPartition[] {
    return this.db
      .transaction(() => {
        const now = Date.now();
        this.sql("heartbeat").run(group, member, process.pid, now);
        const live: string[] = [];
        for (const m of this.sql("members").all(group)) {
          if (now - m.heartbeat <= this.options.sessionTimeoutMs && isAlive(m.pid)) live.push(m.member);
          else {
            this.sql("dropMember").run(group, m.member);
            this.sql("dropAssignments").run(group, m.member);
          }
        }
        const counts = topics.map((topic) => ({ topic, partitions: this.partitionsOf(topic) }));
        const wanted = new Set(topics);
        const current = new Map<number, string>();
        for (const a of this.sql("assignments").all(group))
          if (wanted.has(a.topic) && !current.has(a.partition)) current.set(a.partition, a.member);
        const owners = assignTasks(taskCount(counts.map((c) => c.partitions)), live, current);
        const rows = new Map(
          this.sql("assignments")
            .all(group)
            .map((a) => [partitionId(a), a.member]),
        );
        const mine: TopicPartition[] = [];
        for (const tp of partitionsOfTasks(owners.keys(), counts)) {
          const owner = owners.get(tp.partition)!;
          if (rows.get(partitionId(tp)) !== owner)
            this.sql("assign").run(group, tp.topic, tp.partition, owner);
          if (owner === member) mine.push(tp);
        }
        return mine;
      })
      .immediate();
  }

  async endOffsets(topic: string): Promise<Map<number, number>> {
    const partitions = (await this.partitions(topic)) || 0;
    return new Map(
      Array.from({ length: partitions }, (_, partition) => [partition, this.headOf({ topic, partition })]),
    );
  }

  /** Members of the group whose heart beat within the session timeout and whose process lives. */
  async liveMembers(group: string): Promise<number> {
    const now = Date.now();
    return this.sql("members")
      .all(group)
      .filter((m) => now - m.heartbeat <= this.options.sessionTimeoutMs && isAlive(m.pid)).length;
  }

  private leaveGroup(group: string, member: string): void {
    this.db
      .transaction(() => {
        this.sql("dropMember").run(group, member);
        this.sql("dropAssignments").run(group, member);
      })
      .immediate();
  }

  /**
   * Changes whenever something may have been appended to `topics`: SQLite's data_version moves when another
   * connection commits, and this process counts its own appends. A poller that found nothing skips the
   * per-partition reads until it changes.
   */
  private changeStampOf(topics: readonly string[]): string {
    let here = 0;
    for (const topic of topics) here += this.appendedHere.get(topic) ?? 0;
    return `${this.dataVersionNow()}/${here}`;
  }

  private dataVersionNow(): number {
    this.dataVersion ??= this.db.prepare("PRAGMA data_version").pluck();
    return this.dataVersion.get() as number;
  }

  private dataVersion: Database.Statement | undefined;
  /** Loops of this log waiting for an append, and the timer that looks for other processes' commits meanwhile. */
  private waiters = 0;
  private foreignPoll: NodeJS.Timeout | undefined;
  private seenVersion: number | undefined;

  private headOf(tp: TopicPartition): number {
    return (this.tableOf(tp, false)?.head.get() as number | undefined) ?? 0;
  }

  /** Up to `max` records after `positions`, a fair share from each partition. */
  private fetch(
    partitions: readonly TopicPartition[],
    positions: Map<string, number>,
    max: number,
  ): LogRecord[] {
    const records: LogRecord[] = [];
    const share = Math.max(1, Math.ceil(max / Math.max(1, partitions.length)));
    for (const tp of partitions) records.push(...this.readFrom(tp, positions.get(partitionId(tp))!, share));
    return records;
  }

  /**
   * Resolves on an append to the file — this process's, or another's that the foreign-commit poll saw — after
   * `timeoutMs` when given, or on abort.
   */
  private waitForAppend(signal: AbortSignal, timeoutMs?: number): Promise<void> {
    this.waiters += 1;
    this.foreignPoll ??= this.pollForeignCommits(this.options.maxPollIntervalMs);
    return new Promise((done) => {
      let settled = false;
      const finish = () => {
        if (settled) return;
        settled = true;
        this.waiters -= 1;
        clearTimeout(timer);
        this.signal.off("append", finish);
        signal.removeEventListener("abort", finish);
        done();
      };
      const timer = timeoutMs === undefined ? undefined : setTimeout(finish, timeoutMs);
      this.signal.on("append", finish);
      signal.addEventListener("abort", finish, { once: true });
    });
  }

  /**
   * Another process's commit cannot signal this one, so while anything here waits one timer per log looks at
   * SQLite's data_version (it moves when another connection commits): again 1 ms after it moved, backing off to
   * maxPollIntervalMs while it does not, and the waiters wake when it moved.
   */
  private pollForeignCommits(delayMs: number): NodeJS.Timeout {
    return setTimeout(() => {
      this.foreignPoll = undefined;
      if (this.closed || this.waiters === 0) return;
      const version = this.dataVersionNow();
      const moved = version !== this.seenVersion;
      this.seenVersion = version;
      if (moved) this.signal.appended();
      this.foreignPoll = this.pollForeignCommits(
        moved ? 1 : Math.min(delayMs * 2, this.options.maxPollIntervalMs),
      );
    }, delayMs);
  }

  consume(options: ConsumeOptions, handler: BatchHandler): Consumer {
    const { group, topics, from = "beginning", maxBatch = 500, autoCommit = true } = options;
    const member = `${hostname()}-${process.pid}-${newId().slice(0, 8)}`;
    const abort = new AbortController();
    options.signal?.addEventListener("abort", () => abort.abort(), { once: true });
    const heartbeat = setInterval(() => {
      try {
        if (!this.closed) this.sql("heartbeat").run(group, member, process.pid, Date.now());
      } catch (error) {
        if (!isTransientError(error)) throw error;
        this.link.down(describe(error)); // the next beat, or the loop's sync, tries again
      }
    }, this.options.heartbeatMs);
    heartbeat.unref();

    const paused = new Set<string>();
    let markJoined!: () => void;
    const joined = new Promise<void>((resolve) => {
      markJoined = resolve;
    });
    const run = async () => {
      await new Promise((started) => setImmediate(started));
      const positions = new Map<string, number>();
      let mine: TopicPartition[] = [];
      let lastSync = 0;
      /** The change stamp and partitions of the last read that found nothing. */
      let nothingNewAt: string | undefined;
      const resync = async () => {
        const previous = mine;
        mine = this.syncGroup(group, member, topics);
        lastSync = Date.now();
        const { assigned, revoked } = assignmentChange(previous, mine);
        for (const tp of revoked) positions.delete(partitionId(tp));
        if (revoked.length > 0) await options.onRevoked?.(revoked);
        if (assigned.length === 0) return markJoined();
        const committed = new Map<string, number>();
        for (const topic of new Set(assigned.map((tp) => tp.topic))) {
          for (const r of this.sql("committed").all(group, topic))
            committed.set(partitionId({ topic, partition: r.partition }), r.next_offset);
        }
        for (const tp of assigned) {
          const id = partitionId(tp);
          positions.set(id, committed.get(id) ?? (from === "end" ? this.headOf(tp) : 0));
        }
        await options.onAssigned?.(assigned);
        markJoined();
      };
      try {
        while (!abort.signal.aborted && !this.closed) {
          if (Date.now() - lastSync >= this.options.heartbeatMs) {
            try {
              await resync();
            } catch (error) {
              if (!isTransientError(error)) throw error;
              this.link.down(describe(error));
              await this.waitForAppend(abort.signal, 1_000);
              continue;
            }
          }
          const readable = mine.filter((tp) => !paused.has(partitionId(tp)));
          const stamp = `${this.changeStampOf(topics)}|${readable.map(partitionId).join(",")}`;
          const records = stamp === nothingNewAt ? [] : this.fetch(readable, positions, maxBatch);
          if (records.length === 0) {
            nothingNewAt = stamp;
            await this.waitForAppend(abort.signal, this.options.heartbeatMs);
            continue;
          }
          nothingNewAt = undefined;
          const offsets = nextPositions(records);
          let handled = false;
          const batch: RecordBatch = {
            records,
            commitWith: async (outputs) => {
              handled = true;
              const written = this.db
                .transaction(() => {
                  const positionsWritten = this.insertAll(outputs);
                  this.writeCommits(group, offsets, member);
                  return positionsWritten;
                })
                .immediate();
              this.rememberValidated(outputs, written);
              if (outputs.length > 0) this.signal.appended();
              return written;
            },
          };
          try {
            await handler(batch);
            if (!handled && autoCommit)
              this.db.transaction(() => this.writeCommits(group, offsets, member)).immediate();
            for (const p of offsets)
              if (positions.has(partitionId(p))) positions.set(partitionId(p), p.offset);
            this.link.up();
          } catch (error) {
            if (error instanceof PartitionLostError) await resync();
            else if (isTransientError(error)) {
              // The file is locked past the busy timeout: nothing of the batch was committed; it comes again.
              this.link.down(describe(error));
              await this.waitForAppend(abort.signal, 1_000);
            } else throw error;
          }
          // SQLite calls are synchronous: without a turn of the event loop between batches, a consumer
          // with a backlog starves this process's timers and I/O (other consumers, worker pipes).
          await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        clearInterval(heartbeat);
        if (!this.closed) this.leaveGroup(group, member);
      }
    };

    const done = run();
    done.finally(markJoined).catch(() => undefined);
    const consumer: Consumer = {
      done,
      joined,
      stop: async () => {
        abort.abort();
        await done.catch(() => undefined);
        this.consumers.delete(consumer);
      },
      pause: (partitions) => {
        for (const tp of partitions) paused.add(partitionId(tp));
      },
      resume: (partitions) => {
        for (const tp of partitions) paused.delete(partitionId(tp));
        this.signal.appended();
      },
    };
    this.consumers.add(consumer);
    done.catch(() => this.consumers.delete(consumer));
    return consumer;
  }

  tail(topics: string[], options: { from?: "beginning" | "end" } = {}): Observable<LogRecord> {
    return new Observable<LogRecord>((subscriber) => {
      const abort = new AbortController();
      const positions = new Map<string, number>();
      const partitionsNow = () =>
        topics.flatMap((topic) =>
          Array.from({ length: this.partitionsOf(topic) }, (_, partition) => ({ topic, partition })),
        );
      for (const tp of partitionsNow())
        positions.set(partitionId(tp), options.from === "end" ? this.headOf(tp) : 0);
      (async () => {
        let nothingNewAt: string | undefined;
        while (!abort.signal.aborted && !this.closed) {
          const stamp = this.changeStampOf(topics);
          if (stamp === nothingNewAt) {
            await this.waitForAppend(abort.signal);
            continue;
          }
          // Another process may have added partitions: counted again whenever the file changed.
          for (const topic of topics) this.partitionCounts.delete(topic);
          const partitions = partitionsNow();
          for (const tp of partitions) if (!positions.has(partitionId(tp))) positions.set(partitionId(tp), 0);
          const records = this.fetch(partitions, positions, 1000);
          for (const record of records) {
            positions.set(partitionId(record), record.offset + 1);
            subscriber.next(record);
          }
          if (records.length === 0) {
            nothingNewAt = stamp;
            await this.waitForAppend(abort.signal);
          } else nothingNewAt = undefined;
        }
        subscriber.complete();
      })().catch((error) => subscriber.error(error));
      return () => abort.abort();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.consumers].map((c) => c.stop()));
    this.closed = true;
    clearTimeout(this.foreignPoll);
    this.db.close();
    this.signal.appended(); // tails waiting on this log see it closed and complete
  }
}

export const openEmbeddedLog = (options: EmbeddedLogOptions): EmbeddedLog => new EmbeddedLog(options);
