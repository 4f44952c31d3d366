import { decodeRecord, encodeEvent } from "./codec.ts";
import type { Envelope } from "./envelope.ts";
import { DeadLettered, type DspexEvent } from "./events/index.ts";
import { derivedId } from "./ids.ts";
import type {
  AppendRecord,
  ConsumeOptions,
  Consumer,
  EventLog,
  LogRecord,
  Position,
  ReadOptions,
} from "./log.ts";

/** Validates every event first: one invalid event refuses the whole batch, nothing half-written. */
export const appendEvents = async (log: EventLog, events: readonly Envelope[]): Promise<Position[]> =>
  log.append(events.map(encodeEvent));

export type ReadResult = { record: LogRecord; event: DspexEvent } | { record: LogRecord; error: string };

export const readEvents = async (
  log: EventLog,
  topic: string,
  options?: ReadOptions,
): Promise<ReadResult[]> =>
  (await log.read(topic, options)).map((record) => {
    const decoded = decodeRecord(record);
    return decoded.ok ? { record, event: decoded.event } : { record, error: decoded.reason };
  });

const isUtf8 = (bytes: Buffer): boolean => {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
};

/** Most of the original kept in a dead letter (the rest stays on the source topic, at its offset). */
export const maxDeadLetterOriginalBytes = 256 * 1024;
/** Longest reason a dead letter carries. */
const maxReasonLength = 2_000;
/** Longest source key a dead letter keeps as its own key (a longer one is replaced by the source position). */
const maxDeadLetterKeyLength = 1_000;

/**
 * What a dead letter keeps of the original bytes: as text when they are valid UTF-8, else base64; cut to
 * `maxDeadLetterOriginalBytes` when longer, so a dead letter always fits under the event size limit.
 */
export const deadLetterOriginal = (
  value: Buffer | string,
): { original: string; encoding: "utf8" | "base64"; note: string } => {
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
  const kept = bytes.subarray(0, maxDeadLetterOriginalBytes);
  const cut = kept.length < bytes.length;
  const note = cut ? ` (original cut to its first ${kept.length} of ${bytes.length} bytes)` : "";
  // A cut may split a UTF-8 character: the kept part is judged on its own.
  return isUtf8(kept)
    ? { original: kept.toString("utf8"), encoding: "utf8", note }
    : { original: kept.toString("base64"), encoding: "base64", note };
};

/** A reason of bounded length, with the note on the original kept at its end. */
export const deadLetterReason = (reason: string, note = ""): string =>
  (reason.length > maxReasonLength ? `${reason.slice(0, maxReasonLength)}...` : reason) + note;

/** A dead letter's reason, original and encoding, each bounded; an event given as the original is kept as JSON. */
export const deadLetterContent = (reason: string, original: Buffer | string | Envelope) => {
  const kept = deadLetterOriginal(
    Buffer.isBuffer(original) || typeof original === "string" ? original : JSON.stringify(original),
  );
  return { reason: deadLetterReason(reason, kept.note), original: kept.original, encoding: kept.encoding };
};

/**
 * The dead letter of a record that could not be used: the original bytes (or their start) and why. Its id
 * derives from the record's position alone, whoever wrote it.
 */
export const deadLetterOf = (record: LogRecord, reason: string, consumer?: string) => {
  const sourceId = `${record.topic}/${record.partition}/${record.offset}`;
  return DeadLettered.create({
    id: derivedId(sourceId, "dead-letter"),
    stream: `dlq-${record.topic}`,
    key: record.key && record.key.length <= maxDeadLetterKeyLength ? record.key : sourceId,
    correlationId: sourceId,
    data: {
      source: { topic: record.topic, partition: record.partition, offset: String(record.offset), consumer },
      ...deadLetterContent(reason, record.value),
    },
  });
};

/**
 * Whatever JSON object a record that is not a valid event holds (undefined when it holds none): enough,
 * sometimes, to tell its writer why it was refused (a request id).
 */
export const looseObject = (record: LogRecord): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(record.text ?? record.value.toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
};

/** A string field of a loose object that could be an id (1 to 200 characters). */
export const looseId = (object: Record<string, unknown> | undefined, name: string): string | undefined => {
  const value = object?.[name];
  return typeof value === "string" && value.length > 0 && value.length <= 200 ? value : undefined;
};

export interface DecodedRecord {
  record: LogRecord;
  event: DspexEvent;
}

/** A record that is not a valid dspex event, and why. */
export interface UnreadableRecord {
  record: LogRecord;
  reason: string;
}

export interface EventBatch {
  events: DecodedRecord[];
  /** The batch's records that are not valid events (dead-lettered by the topic's owner). */
  unreadable: UnreadableRecord[];
  /** Appends `outputs` (validated) and commits the batch's offsets atomically, dead letters included. */
  commitWith(outputs: readonly Envelope[]): Promise<Position[]>;
  /**
   * Commits nothing now: the batch changed nothing, and a later commit of the same partitions covers its
   * offsets (until then a restart hands it over again). A batch with dead letters still commits them.
   */
  defer(): void;
}

export interface ConsumeEventsOptions extends ConsumeOptions {
  /**
   * The topics whose unusable records this group dead-letters (default: all it reads). Another group
   * reading them skips such records: each gets one dead letter, from the group that owns the topic.
   */
  deadLetters?: readonly string[];
}

/**
 * Consumes decoded events. Records that are not valid dspex events never reach the handler:
 * they are dead-lettered with their original bytes and the reason, in the same commit.
 */
export const consumeEvents = (
  log: EventLog,
  options: ConsumeEventsOptions,
  handler: (batch: EventBatch) => Promise<void> | void,
): Consumer => {
  const lettered = new Set(options.deadLetters ?? options.topics);
  return log.consume({ ...options, autoCommit: false }, async (batch) => {
    const events: DecodedRecord[] = [];
    const unreadable: UnreadableRecord[] = [];
    const deadLetters: AppendRecord[] = [];
    for (const record of batch.records) {
      const decoded = decodeRecord(record);
      if (decoded.ok) {
        events.push({ record, event: decoded.event });
        continue;
      }
      unreadable.push({ record, reason: decoded.reason });
      if (lettered.has(record.topic))
        deadLetters.push(encodeEvent(deadLetterOf(record, decoded.reason, options.group)));
    }
    let committed = false;
    let deferred = false;
    let lettersOut = deadLetters.length === 0;
    /**
     * The dead letters go out with the first commit only. A batch its handler deferred but that had dead
     * letters is committed at once (below); a later commit of it that adds nothing does nothing, so it never
     * runs a second transaction beside the first.
     */
    const commitWith = async (outputs: readonly Envelope[]) => {
      if (committed && lettersOut && outputs.length === 0) return [];
      const letters = lettersOut ? [] : deadLetters;
      committed = true;
      lettersOut = true;
      return batch.commitWith([...letters, ...outputs.map(encodeEvent)]);
    };
    const defer = () => {
      deferred = true;
    };
    if (events.length > 0 || unreadable.length > 0) await handler({ events, unreadable, commitWith, defer });
    if (committed || (deferred && deadLetters.length === 0)) return;
    if (options.autoCommit === false) {
      lettersOut = true;
      await log.append(deadLetters);
    } else await commitWith([]);
  });
};
