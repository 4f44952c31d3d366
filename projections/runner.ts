import { debounceTime, Subject, type Subscription } from "rxjs";
import { decodeRecord, Headers } from "../streams/codec.ts";
import type { DspexEvent } from "../streams/events/index.ts";
import { definitionOf } from "../streams/events/index.ts";
import { type EventLog, headerOf, type LogRecord, textOf } from "../streams/log.ts";
import { Topics } from "../streams/topics.ts";
import { type Folding, foldInto, folding, type Projection, type ProjectionState } from "./projection.ts";
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
  /** `trusted` skips zod validation of records this log already validated on append (faster replay). */
  decode?: "validated" | "trusted";
  /** Records that are not valid events: the runner skips them (the consumers dead-letter them). */
  onInvalid?: (record: LogRecord, reason: string) => void;
}

/** Where the runner reads one partition: the next offset, and the records fetched but not applied yet. */
interface Cursor {
  topic: string;
  partition: number;
  /** The topic's place in the flow order (ties in append time). */
  rank: number;
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

/** Whether `a`'s next record comes before `b`'s: append time, then flow order, then partition. */
const precedes = (a: Cursor, b: Cursor): boolean => {
  const x = a.buffer[a.index]!.timestamp;
  const y = b.buffer[b.index]!.timestamp;
  if (x !== y) return x < y;
  if (a.rank !== b.rank) return a.rank < b.rank;
  return a.partition < b.partition;
};

/** The JSON of a value, or undefined when it is not JSON (the codec then says why). */
const parsedOrUndefined = (text: string): DspexEvent | undefined => {
  try {
    return JSON.parse(text) as DspexEvent;
  } catch {
    return undefined;
  }
};

/** A projection, its state, and what to tell live observers when it changes an entity. */
interface Target {
  fold: Folding<unknown>;
  touched: (key: string) => void;
}

/**
 * Folds the log into projections: reads every partition of their topics from its checkpoint, merges
 * them by append time (then topic, partition, offset), applies each event, snapshots every N events,
 * and can rebuild from scratch. Cross-topic joins rely on causes being appended before their effects.
 */
export class ProjectionRunner {
  private readonly states = new Map<string, ProjectionState<unknown>>();
  /** Per event type, the projections that fold it (with their current states). */
  private targets = new Map<string, Target[]>();
  private positions = new Map<string, number>();
  /** The partitions being read, while a catch-up runs: their offsets are newer than `positions`. */
  private cursors: Cursor[] = [];
  private applied = 0;
  private sinceSnapshot = 0;
  private readonly topics: string[];
  private readonly wanted: Set<string>;
  /** Current schema version per wanted type: trusted decoding upcasts anything older the safe way. */
  private readonly versionOf = new Map<string, number>();
  private readonly changeSubject = new Subject<EntityChange>();
  /** The event being applied, for live change notices. */
  private current: DspexEvent | undefined;
  private running: Promise<number> | undefined;
  private queued: Promise<number> | undefined;
  /** Every entity change, live (after start): `variables$` filters it. */
  readonly changes$ = this.changeSubject.asObservable();

  constructor(private readonly options: RunnerOptions) {
    this.wanted = new Set(options.projections.flatMap((p) => p.types));
    for (const type of this.wanted) this.versionOf.set(type, definitionOf(type)!.version);
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
    this.savePositions();
    return Object.fromEntries(this.positions);
  }

  private savePositions(): void {
    for (const cursor of this.cursors) {
      const key = positionKey(cursor.topic, cursor.partition);
      if (cursor.next > 0 || this.positions.has(key)) this.positions.set(key, cursor.next);
    }
  }

  /** Installs states (empty, or from a snapshot) and routes each wanted type to its projections. */
  private install(states: ReadonlyMap<string, ProjectionState<unknown>>): void {
    this.states.clear();
    this.targets = new Map();
    for (const projection of this.options.projections) {
      const state = states.get(projection.name) ?? new Map();
      this.states.set(projection.name, state);
      const target: Target = {
        fold: folding(projection, state),
        touched: (key) =>
          this.changeSubject.next({
            projection: projection.name,
            key,
            entity: state.get(key),
            event: this.current!,
          }),
      };
      for (const type of projection.types) {
        const list = this.targets.get(type) ?? [];
        list.push(target);
        this.targets.set(type, list);
      }
    }
  }

  private reset(): void {
    this.install(new Map());
    this.positions = new Map();
    this.cursors = [];
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
      this.install(
        new Map(this.options.projections.map((p) => [p.name, new Map(snapshot.states[p.name] ?? [])])),
      );
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
    // One run waiting is enough: it reads to the end when it starts. (follow() calls this per burst of
    // appends; on Kafka a run takes a while, and queueing one per call fell minutes behind.)
    if (this.queued) return this.queued;
    const run = (this.running ?? Promise.resolve(0)).then(() => {
      this.queued = undefined;
      return this.readToEnd();
    });
    this.queued = run;
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

  /**
   * The event in a record, if a projection wants it. The type header decides before anything is parsed;
   * `trusted` then only parses JSON, unless the record is of an older schema version (upcast and validated).
   */
  private decode(record: LogRecord): DspexEvent | undefined {
    const type = headerOf(record, Headers.type);
    if (type !== undefined && !this.wanted.has(type)) return undefined;
    if (this.options.decode === "trusted" && type !== undefined) {
      const event = parsedOrUndefined(textOf(record));
      if (event?.type === type && event.schemaVersion === this.versionOf.get(type)) return event;
    }
    const decoded = decodeRecord(record);
    if (!decoded.ok) {
      this.options.onInvalid?.(record, decoded.reason);
      return undefined;
    }
    return this.wanted.has(decoded.event.type) ? decoded.event : undefined;
  }

  /** Folds one record into every projection that wants it; false when none does. */
  private apply(record: LogRecord): boolean {
    const event = this.decode(record);
    if (!event) return false;
    const targets = this.targets.get(event.type);
    if (!targets) return false;
    const live = this.changeSubject.observed;
    this.current = event;
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i]!;
      foldInto(target.fold, event, live ? target.touched : undefined);
    }
    this.current = undefined;
    return true;
  }

  /** Opens a cursor on every partition of the projections' topics (as many as the log says it has). */
  private async open(): Promise<Cursor[]> {
    const cursors: Cursor[] = [];
    for (const topic of this.topics) {
      const partitions = await this.options.log.partitions(topic);
      for (let partition = 0; partition < partitions; partition++) {
        const cursor: Cursor = {
          topic,
          partition,
          rank: rankOf(topic),
          next: this.positions.get(positionKey(topic, partition)) ?? 0,
          buffer: [],
          index: 0,
          atEnd: false,
        };
        cursors.push(cursor);
        await this.fill(cursor);
      }
    }
    return cursors;
  }

  /**
   * Merges the partitions by append time and folds each record. Per round it finds the earliest head and
   * the runner-up, then takes records from the earliest partition as long as they stay ahead: a long run of
   * one partition costs one comparison per record, not one per partition.
   */
  private async readToEnd(): Promise<number> {
    this.cursors = await this.open();
    const active = this.cursors.filter((cursor) => cursor.buffer.length > 0);
    const every = this.options.snapshotEvery ?? 0;
    let count = 0;
    try {
      while (active.length > 0) {
        let best = 0;
        let second = -1;
        for (let i = 1; i < active.length; i++) {
          if (precedes(active[i]!, active[best]!)) {
            second = best;
            best = i;
          } else if (second < 0 || precedes(active[i]!, active[second]!)) second = i;
        }
        const cursor = active[best]!;
        const limit = second < 0 ? undefined : active[second]!;
        do {
          const record = cursor.buffer[cursor.index++]!;
          cursor.next = record.offset + 1;
          if (this.apply(record)) {
            count++;
            this.applied++;
            if (every > 0 && ++this.sinceSnapshot >= every) await this.snapshot();
          }
          if (cursor.index >= cursor.buffer.length) {
            if (!cursor.atEnd) await this.fill(cursor);
            if (cursor.index >= cursor.buffer.length) {
              active.splice(best, 1);
              break;
            }
          }
        } while (limit === undefined || precedes(cursor, limit));
      }
    } finally {
      this.savePositions();
      this.cursors = [];
    }
    return count;
  }
}

export const projectionRunner = (options: RunnerOptions): ProjectionRunner => new ProjectionRunner(options);
