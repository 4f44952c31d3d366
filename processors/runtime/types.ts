import type { SnapshotStore } from "../../projections/snapshots.ts";
import type { Envelope } from "../../streams/envelope.ts";
import type { DspexEvent } from "../../streams/events/index.ts";
import type { LogRecord, Position } from "../../streams/log.ts";

export interface ProcessorContext<T = undefined> {
  /** The time of this input: when the log stored it (so a replay sees the same times). */
  now: number;
  /** Where the input was read. */
  source: Position;
  /** The key the input was stored under (what decided its partition, hence its task). */
  key: string;
  /** The processor's consumer group. */
  consumer: string;
  /** The processor's table (read whole by every instance), as far as it has been read. */
  table: T;
}

export interface Output<S> {
  state: S;
  emit: Envelope[];
}

/**
 * Topics every instance of a processor reads whole, folded into one value that `handle` sees (Kafka
 * Streams' global table): what all tasks need, such as the programs and variables of the registry.
 */
export interface Table<T> {
  topics: readonly string[];
  initial: T;
  fold(table: T, event: DspexEvent): T;
  /**
   * True when the input names something the table does not have yet: the table is read up to the end of
   * its topics before the input is handled (an input appended after a table event always sees it).
   */
  isBehindFor?(table: T, event: DspexEvent): boolean;
}

/**
 * A processor: pure functions of its state and an input (or the time), returning the next state
 * and the events to emit. The runtime does every I/O.
 *
 * State is kept per task: task p is partition p of every input topic (co-partitioning). An input updates
 * only its own task's state, so every input that changes a piece of state must be keyed like the others
 * that change it; one instance or several then give the same outputs.
 */
export interface Processor<S, T = undefined> {
  /** Also the consumer group. */
  name: string;
  /** Input topics (co-partitioned); on a rebuild, inputs of the same millisecond replay in this order. */
  topics: readonly string[];
  initialState: S;
  handle(state: S, event: DspexEvent, ctx: ProcessorContext<T>): Output<S>;
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
  table?: Table<T>;
  /**
   * The input topics whose unusable records this processor dead-letters (default: all). Name only the
   * topics it owns, so a bad record read by several processors gets one dead letter.
   */
  deadLetters?: readonly string[];
  /**
   * A record of its input that is not a valid event (it is dead-lettered by its topic's owner): what to
   * answer whoever wrote it, when the record says enough to answer (a request id). Ids derive from the
   * record's position, so a redelivery answers the same.
   */
  answerUnreadable?(record: LogRecord, reason: string): Envelope[];
  /** Input topics the task stops taking records from while its state says so: they wait on the log. */
  pausedTopics?(state: S): readonly string[];
}

export interface RuntimeOptions {
  maxBatch?: number;
  /** The wall clock for ticks; tests may pass their own. */
  clock?: () => number;
  /** How many recent input ids a task remembers for dropping redelivered inputs (a window, not every id). */
  dedupCapacity?: number;
  /** Longest sleep between ticks, so a processor with pending timers never oversleeps. */
  maxTickIntervalMs?: number;
  /**
   * Where task states are saved now and then, so a task loads its latest snapshot and replays only the
   * inputs committed after it (the projections' snapshot stores).
   */
  snapshots?: SnapshotStore;
  /** Inputs of a task between its snapshots (default 1000). */
  snapshotEvery?: number;
  /**
   * A batch that changed nothing (no output, same state) commits no transaction of its own: the next
   * commit of its partition covers it, or, at the latest, a commit this long after it (ms, default 1000).
   */
  quietCommitMs?: number;
  /** Told which tasks this instance holds after each change (to say so, e.g. `dspex processors`). */
  onTasks?(tasks: readonly number[], change: { taken: readonly number[]; given: readonly number[] }): void;
}

export interface RunningProcessor<S> {
  /**
   * Resolves when the table is read and the processor is a member of its group with its first tasks
   * rebuilt (later ones are rebuilt as they are assigned).
   */
  ready: Promise<void>;
  /** Resolves when stopped; rejects when a batch failed (nothing of it was committed). */
  done: Promise<void>;
  /** The state of each task this instance holds now, by partition. */
  states(): ReadonlyMap<number, S>;
  /** How many input ids it remembers to drop redelivered inputs, over its tasks. */
  remembered(): number;
  stop(): Promise<void>;
}

/** An input read back while rebuilding, with the topic's rank (order of `topics`). */
export interface CommittedInput {
  record: LogRecord;
  event: DspexEvent;
  rank: number;
}
