import type { LogRecord, ReadOptions } from "../log.ts";
import { mergeByTime } from "../time-order.ts";

/** What a bounded read of one partition still waits for. */
export interface ReadTarget {
  /** First offset to return. */
  start: number;
  /** The last stable offset when the read began: records at or past it are not part of this read. */
  end: number;
  /** Next offset the reader will see (control records and aborted records included). */
  position: number;
  lastAccepted: number;
  done: boolean;
}

export interface ReadProgress {
  targets: Map<number, ReadTarget>;
  records: Map<number, LogRecord[]>;
}

/**
 * Where a read starts and stops in each partition, from the offsets the broker reported
 * (`offset` is the last stable offset under read_committed; `low` the first offset still stored).
 */
export const readTargets = (
  offsets: ReadonlyArray<{ partition: number; offset: string; low: string }>,
  options: ReadOptions,
): Map<number, ReadTarget> =>
  new Map(
    offsets.map(({ partition, offset, low }) => {
      const end = Number(offset);
      const wanted = options.partition === undefined || options.partition === partition;
      const start = wanted ? Math.max(options.fromOffset ?? 0, Number(low)) : end;
      const done = start >= end || options.limit === 0;
      return [partition, { start, end, position: start, lastAccepted: start - 1, done }];
    }),
  );

/** Takes what a fetch returned for one partition: records inside the read's range, once each. */
export const recordProgress = (
  progress: ReadProgress,
  partition: number,
  nextPosition: number,
  records: readonly LogRecord[],
  limit?: number,
): void => {
  const target = progress.targets.get(partition);
  if (!target || target.done) return;
  const kept = progress.records.get(partition) ?? [];
  for (const record of records) {
    if (limit !== undefined && kept.length >= limit) break;
    if (record.offset < target.start || record.offset >= target.end || record.offset <= target.lastAccepted)
      continue;
    kept.push(record);
    target.lastAccepted = record.offset;
  }
  progress.records.set(partition, kept);
  target.position = Math.max(target.position, nextPosition);
  target.done = target.position >= target.end || (limit !== undefined && kept.length >= limit);
};

export const isReadComplete = (progress: ReadProgress): boolean =>
  [...progress.targets.values()].every((target) => target.done);

/** Every partition's records merged like the embedded log does: by time, each partition in offset order. */
export const mergedRecords = (progress: ReadProgress, limit?: number): LogRecord[] => {
  const partitions = [...progress.records.entries()].sort(([a], [b]) => a - b).map(([, records]) => records);
  const merged = mergeByTime(partitions, (record) => record.timestamp);
  return limit === undefined || limit < 0 ? merged : merged.slice(0, limit);
};
