import type { EventLog } from "./log.ts";

export interface PartitionLag {
  topic: string;
  partition: number;
  /** The next offset the group will read (0 when it never committed). */
  committed: number;
  end: number;
  /** Offsets between them (on Kafka transaction markers count too: an upper bound of the records). */
  lag: number;
}

/** Where a group is on every partition of the topics, against their ends. */
export const groupLag = async (
  log: EventLog,
  group: string,
  topics: readonly string[],
): Promise<PartitionLag[]> => {
  const lags: PartitionLag[] = [];
  for (const topic of topics) {
    const [ends, committed] = await Promise.all([log.endOffsets(topic), log.committed(group, topic)]);
    for (const [partition, end] of [...ends].sort(([a], [b]) => a - b)) {
      const at = committed.get(partition) ?? 0;
      lags.push({ topic, partition, committed: at, end, lag: Math.max(0, end - at) });
    }
  }
  return lags;
};

/** Whether the group has committed every record of the topics (what is left, if anything, is no record). */
export const caughtUp = async (log: EventLog, group: string, topics: readonly string[]): Promise<boolean> => {
  for (const { topic, partition, committed, lag } of await groupLag(log, group, topics)) {
    if (lag === 0) continue;
    if ((await log.read(topic, { partition, fromOffset: committed, limit: 1 })).length > 0) return false;
  }
  return true;
};
