import { debounceTime, Subject, type Subscription } from "rxjs";
import { decodeRecord, Headers } from "../streams/codec.ts";
import type { DspexEvent } from "../streams/events/index.ts";
import { definitionOf } from "../streams/events/index.ts";
import type { EventLog, LogRecord } from "../streams/log.ts";
import { Topics } from "../streams/topics.ts";
import { applyEvent, type Projection, type ProjectionState } from "./projection.ts";
import type { Snapshot, SnapshotStore } from "./snapshots.ts";

/** One entity that changed, with the event that changed it. */
export interface EntityChange<Entity = unknown> {
  projection: string;
  key: string;
  entity: Entity | undefined;
  event: DspexEvent;
}

export interface RunnerOptions {
  /** Names the runner's snapshot. */
  name: string;
  log: EventLog;
  projections: readonly Projection<unknown>[];
  snapshots?: SnapshotStore;
  /** Save a snapshot after this many applied events (0: never). */
  snapshotEvery?: number;
  /** Records read per partition per fetch. */
  batchSize?: number;
  /** Partitions probed per topic (the port does not list them). */
  maxPartitions?: number;
  /** `trusted` skips zod validation of records this log already validated on append (faster replay). */
  decode?: "validated" | "trusted";
  /** Records that are not valid events: the runner skips them (the consumers dead-letter them). */
  onInvalid?: (record: LogRecord, reason: string) => void;
}

interface Cursor {
  topic: string;
  partition: number;
  next: number;
  buffer: LogRecord[];
  index: number;
  atEnd: boolean;
}

const positionKey = (topic: string, partition: number) => `${topic}/${partition}`;

/** Ties in append time are broken in the order events flow, so causes come before their effects. */
const flowOrder: readonly string[] = Object.values(Topics);
const rankOf = (topic: string) => {
  const rank = flowOrder.indexOf(topic);
  return rank < 0 ? flowOrder.length : rank;
};

/**
 * Folds the log into projections: reads every partition of their topics from its checkpoint, merges
 * them by append time (then topic, partition, offset), applies each event, snapshots every N events,
 * and can rebuild from scratch. Cross-topic joins rely on causes being appended before their effects.
 */
export class ProjectionRunner {
  private readonly states = new Map<string, ProjectionState<unknown>>();
  private positions = new Map<string, number>();
  private applied = 0;
  private sinceSnapshot = 0;
  private readonly topics: string[];
  private readonly wanted: Set<string>;
  private readonly changeSubject = new Subject<EntityChange>();
  private running: Promise<number> | undefined;
  /** Every entity change, live (after start): `variables$` filters it. */
  readonly changes$ = this.changeSubject.asObservable();

  constructor(private readonly options: RunnerOptions) {
    this.wanted = new Set(options.projections.flatMap((p) => p.types));
    this.topics = [...new Set([...this.wanted].map((type) => definitionOf(type)!.topic))].sort(
      (a, b) => rankOf(a) - rankOf(b),
    );
    this.reset();
  }

  get eventsApplied(): number {
    return this.applied;
  }

  state<Entity = unknown>(projection: string): ReadonlyMap<string, Entity> {
    const state = this.states.get(projection);
    if (!state) throw new Error(`no projection "${projection}" in runner ${this.options.name}`);
    return state as ReadonlyMap<string, Entity>;
  }

  checkpoint(): Record<string, number> {
    return Object.fromEntries(this.positions);
  }

  private reset(): void {
    for (const p of this.options.projections) this.states.set(p.name, new Map());
    this.positions = new Map();
    this.applied = 0;
    this.sinceSnapshot = 0;
  }

  private versions(): Record<string, number> {
    return Object.fromEntries(this.options.projections.map((p) => [p.name, p.version]));
  }

  /** Loads the latest usable snapshot (if any), then catches up with the log. */
  async start(): Promise<number> {
    const snapshot = await this.options.snapshots?.load(this.options.name);
    if (snapshot && JSON.stringify(snapshot.versions) === JSON.stringify(this.versions())) {
      this.reset();
      for (const p of this.options.projections)
        this.states.set(p.name, new Map(snapshot.states[p.name] ?? []));
      this.positions = new Map(Object.entries(snapshot.positions));
      this.applied = snapshot.events;
    }
    return this.catchUp();
  }

  /** Forgets everything and folds the whole log again. */
  async rebuild(): Promise<number> {
    await this.running;
    this.reset();
    return this.catchUp();
  }

  /** Applies every event appended since the checkpoint; resolves with how many it applied. */
  catchUp(): Promise<number> {
    const run = (this.running ?? Promise.resolve(0)).then(() => this.readToEnd());
    this.running = run.catch(() => 0);
    return run;
  }

  /** Catches up whenever something is appended to the projections' topics, until unsubscribed. */
  follow(): Subscription {
    return this.options.log
      .tail(this.topics, { from: "end" })
      .pipe(debounceTime(5))
      .subscribe(() => void this.catchUp());
  }

  async snapshot(): Promise<Snapshot | undefined> {
    if (!this.options.snapshots) return undefined;
    const snapshot: Snapshot = {
      runner: this.options.name,
      versions: this.versions(),
      positions: this.checkpoint(),
      events: this.applied,
      states: Object.fromEntries([...this.states].map(([name, state]) => [name, [...state]])),
      takenAt: new Date().toISOString(),
    };
    await this.options.snapshots.save(snapshot);
    this.sinceSnapshot = 0;
    return snapshot;
  }

  private async fill(cursor: Cursor): Promise<void> {
    const limit = this.options.batchSize ?? 5000;
    cursor.buffer = await this.options.log.read(cursor.topic, {
      partition: cursor.partition,
      fromOffset: cursor.next,
      limit,
    });
    cursor.index = 0;
    cursor.atEnd = cursor.buffer.length < limit;
  }

  private decode(record: LogRecord): DspexEvent | undefined {
    const type = record.headers[Headers.type];
    if (type !== undefined && !this.wanted.has(type)) return undefined;
    if (this.options.decode === "trusted" && type !== undefined)
      return JSON.parse(record.value.toString("utf8"));
    const decoded = decodeRecord(record);
    if (!decoded.ok) {
      this.options.onInvalid?.(record, decoded.reason);
      return undefined;
    }
    return this.wanted.has(decoded.event.type) ? decoded.event : undefined;
  }

  private async readToEnd(): Promise<number> {
    const maxPartitions = this.options.maxPartitions ?? 32;
    const cursors: Cursor[] = [];
    for (const topic of this.topics)
      for (let partition = 0; partition < maxPartitions; partition++) {
        const cursor: Cursor = {
          topic,
          partition,
          next: this.positions.get(positionKey(topic, partition)) ?? 0,
          buffer: [],
          index: 0,
          atEnd: false,
        };
        await this.fill(cursor);
        if (cursor.buffer.length > 0) cursors.push(cursor);
      }
    const every = this.options.snapshotEvery ?? 0;
    const live = this.changeSubject.observed;
    let count = 0;
    for (;;) {
      let best: Cursor | undefined;
      let bestRecord: LogRecord | undefined;
      for (const cursor of cursors) {
        if (cursor.index >= cursor.buffer.length) {
          if (cursor.atEnd) continue;
          await this.fill(cursor);
          if (cursor.buffer.length === 0) continue;
        }
        const record = cursor.buffer[cursor.index]!;
        if (
          !bestRecord ||
          record.timestamp < bestRecord.timestamp ||
          (record.timestamp === bestRecord.timestamp &&
            (rankOf(record.topic) < rankOf(bestRecord.topic) ||
              (record.topic === bestRecord.topic && record.partition < bestRecord.partition)))
        ) {
          best = cursor;
          bestRecord = record;
        }
      }
      if (!best || !bestRecord) break;
      best.index++;
      best.next = bestRecord.offset + 1;
      this.positions.set(positionKey(best.topic, best.partition), best.next);
      const event = this.decode(bestRecord);
      if (!event) continue;
      for (const projection of this.options.projections) {
        if (!(projection.types as readonly string[]).includes(event.type)) continue;
        const state = this.states.get(projection.name)!;
        const touched = applyEvent(projection, state, event);
        if (live)
          for (const key of touched)
            this.changeSubject.next({ projection: projection.name, key, entity: state.get(key), event });
      }
      count++;
      this.applied++;
      this.sinceSnapshot++;
      if (every > 0 && this.sinceSnapshot >= every) await this.snapshot();
    }
    return count;
  }
}

export const projectionRunner = (options: RunnerOptions): ProjectionRunner => new ProjectionRunner(options);
