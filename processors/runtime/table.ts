import type { Subscription } from "rxjs";
import { topicPartitionId } from "../../streams/assignment.ts";
import { decodeRecord } from "../../streams/codec.ts";
import type { EventLog, LogRecord } from "../../streams/log.ts";
import type { Table } from "./types.ts";

/** A table kept up to date from its topics: read whole at first, then followed live. */
export interface TableReader<T> {
  value(): T;
  /** Reads every partition of the table's topics up to its end now. */
  catchUp(): Promise<void>;
  /** When the latest catch-up (or the first read) started, by the wall clock: it holds what came before. */
  caughtUpAt(): number;
  stop(): void;
}

/**
 * Reads the table's topics from the beginning, then follows them. The live tail starts before the first
 * read, so nothing appended meanwhile is missed; a record is folded once (per partition, in offset order).
 */
export const openTable = async <T>(
  log: EventLog,
  table: Table<T>,
  onError: (error: unknown) => void,
  clock: () => number = Date.now,
): Promise<TableReader<T>> => {
  let value = table.initial;
  const next = new Map<string, number>();
  const apply = (record: LogRecord) => {
    const id = topicPartitionId(record);
    if (record.offset < (next.get(id) ?? 0)) return;
    next.set(id, record.offset + 1);
    const decoded = decodeRecord(record);
    if (decoded.ok) value = table.fold(value, decoded.event);
  };
  let waiting: LogRecord[] | undefined = [];
  const live: Subscription = log.tail([...table.topics], { from: "end" }).subscribe({
    next: (record) => (waiting ? waiting.push(record) : apply(record)),
    error: onError,
  });
  let caughtUpAt = clock();
  // One read per topic (on Kafka each read joins a scratch group): from the partition furthest behind.
  const readToEnd = async () => {
    for (const topic of table.topics) {
      const partitions = await log.partitions(topic);
      const starts = Array.from(
        { length: partitions },
        (_, partition) => next.get(topicPartitionId({ topic, partition })) ?? 0,
      );
      if (partitions === 0) continue;
      const records = await log.read(topic, { fromOffset: Math.min(...starts) });
      records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
      for (const record of records) apply(record);
    }
  };
  try {
    await readToEnd();
  } catch (error) {
    live.unsubscribe();
    throw error;
  }
  for (const record of waiting) apply(record);
  waiting = undefined;
  return {
    value: () => value,
    async catchUp() {
      caughtUpAt = clock();
      await readToEnd();
    },
    caughtUpAt: () => caughtUpAt,
    stop: () => live.unsubscribe(),
  };
};
