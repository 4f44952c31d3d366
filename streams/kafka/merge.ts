import type { LogRecord } from "../log.ts";

/** Records of one partition fetched together, and how many of them were handed over already. */
export interface PendingRecords {
  records: readonly LogRecord[];
  handed: number;
  /** Position of the record's topic in the consumer's topic list: ties in time go to the earlier topic. */
  topicRank: number;
}

const head = (pending: PendingRecords): LogRecord => pending.records[pending.handed]!;

const earlier = (a: PendingRecords, b: PendingRecords): number =>
  head(a).timestamp - head(b).timestamp || a.topicRank - b.topicRank || head(a).partition - head(b).partition;

/**
 * The next run to hand over when several partitions were fetched together: the partition whose next
 * record is the oldest, and as many of its records as come no later than the next record of every other
 * topic (at most `maxBatch`). Handing runs over in this order merges topics by append time — a program
 * registered before a request is seen before it, as on the embedded log — while partitions of one topic,
 * ordered per key anyway, keep their whole batches.
 */
export const nextRun = (
  pending: readonly PendingRecords[],
  maxBatch: number,
): { index: number; count: number } | undefined => {
  const waiting = pending.map((p, index) => ({ p, index })).filter(({ p }) => p.handed < p.records.length);
  if (waiting.length === 0) return undefined;
  const [first, ...rest] = waiting.sort((a, b) => earlier(a.p, b.p));
  // Partitions of one topic are independent (order is per key); only other topics bound the run.
  const others = rest.filter(({ p }) => p.topicRank !== first!.p.topicRank);
  const bound = others.length === 0 ? undefined : others.map(({ p }) => p).sort(earlier)[0]!;
  let count = 1;
  while (
    count < maxBatch &&
    first!.p.handed + count < first!.p.records.length &&
    (bound === undefined || earlier({ ...first!.p, handed: first!.p.handed + count }, bound) <= 0)
  )
    count++;
  return { index: first!.index, count };
};
