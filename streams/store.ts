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

/** The dead letter of a record that could not be used: the original bytes and why. */
export const deadLetterOf = (record: LogRecord, reason: string, consumer?: string) => {
  const utf8 = isUtf8(record.value);
  const sourceId = `${record.topic}/${record.partition}/${record.offset}`;
  return DeadLettered.create({
    id: derivedId(sourceId, `dead-letter:${consumer ?? ""}`),
    stream: `dlq-${record.topic}`,
    key: record.key || sourceId,
    correlationId: sourceId,
    data: {
      source: { topic: record.topic, partition: record.partition, offset: String(record.offset), consumer },
      reason,
      original: utf8 ? record.value.toString("utf8") : record.value.toString("base64"),
      encoding: utf8 ? "utf8" : "base64",
    },
  });
};

export interface DecodedRecord {
  record: LogRecord;
  event: DspexEvent;
}

export interface EventBatch {
  events: DecodedRecord[];
  /** Appends `outputs` (validated) and commits the batch's offsets atomically, dead letters included. */
  commitWith(outputs: readonly Envelope[]): Promise<Position[]>;
}

/**
 * Consumes decoded events. Records that are not valid dspex events never reach the handler:
 * they are dead-lettered with their original bytes and the reason, in the same commit.
 */
export const consumeEvents = (
  log: EventLog,
  options: ConsumeOptions,
  handler: (batch: EventBatch) => Promise<void> | void,
): Consumer =>
  log.consume({ ...options, autoCommit: false }, async (batch) => {
    const events: DecodedRecord[] = [];
    const deadLetters: AppendRecord[] = [];
    for (const record of batch.records) {
      const decoded = decodeRecord(record);
      if (decoded.ok) events.push({ record, event: decoded.event });
      else deadLetters.push(encodeEvent(deadLetterOf(record, decoded.reason, options.group)));
    }
    let committed = false;
    const commitWith = (outputs: readonly Envelope[]) => {
      committed = true;
      return batch.commitWith([...deadLetters, ...outputs.map(encodeEvent)]);
    };
    if (events.length > 0) await handler({ events, commitWith });
    if (committed) return;
    if (options.autoCommit === false) await log.append(deadLetters);
    else await batch.commitWith(deadLetters);
  });
