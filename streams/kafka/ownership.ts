import type { Producer } from "kafkajs";
import { topicPartitionId } from "../assignment.ts";
import type { LogRecord, TopicPartition } from "../log.ts";

/** An input partition a group member took over: the producer that commits it, and where its group stood. */
export interface Ownership {
  producer: Producer;
  /** The group's committed offset when taken over, moved on by this member's own commits since. */
  committed: number;
}

/**
 * This member committed the partition up to `next` (exclusive). Kept while it keeps the partition: if
 * kafkajs hands those records over again (it rejoined, and its offset fetch did not see this commit yet),
 * they are not handled twice.
 */
export const committedUpTo = (ownership: Ownership, next: number): void => {
  ownership.committed = Math.max(ownership.committed, next);
};

/** Of a run fetched, the records its group has not committed yet (kafkajs may have fetched from before). */
export const uncommitted = (ownership: Ownership, run: readonly LogRecord[]): LogRecord[] =>
  run.filter((record) => record.offset >= ownership.committed);

/**
 * The input partitions a consumer-group member owns, each with its transactional producer (one per group
 * and partition). Taking a partition over inits that producer, which fences the previous owner (another
 * member, or this one before a restart) and completes or aborts that owner's last transaction; only then is
 * the group's committed offset stable (a pending transactional commit is not visible to the offset fetch
 * kafkajs did at the join: KIP-447's unstable offsets, which kafkajs cannot ask about), so it is read then.
 */
export const ownerships = (
  producerOf: (tp: TopicPartition) => Producer,
  committedOffsetOf: (tp: TopicPartition) => Promise<number>,
) => {
  const owned = new Map<string, Promise<Ownership>>();
  const release = (key: string) => {
    const ownership = owned.get(key);
    owned.delete(key);
    return ownership?.then(({ producer }) => producer.disconnect()).catch(() => undefined);
  };
  return {
    /** The partition's ownership, taken over now if it is not held yet (a failed take-over is forgotten). */
    of(tp: TopicPartition): Promise<Ownership> {
      const key = topicPartitionId(tp);
      let ownership = owned.get(key);
      if (!ownership) {
        const producer = producerOf(tp);
        ownership = (async () => {
          await producer.connect();
          return { producer, committed: await committedOffsetOf(tp) };
        })();
        ownership.catch(() => {
          owned.delete(key);
          void producer.disconnect().catch(() => undefined);
        });
        owned.set(key, ownership);
      }
      return ownership;
    },
    /** Gives the partition up (fenced, or its transaction's fate unknown): the next use takes it over anew. */
    drop(tp: TopicPartition): void {
      void release(topicPartitionId(tp));
    },
    /** Gives up every partition not in `holding` (the member's assignment changed). */
    keepOnly(holding: ReadonlySet<string>): void {
      for (const key of [...owned.keys()]) if (!holding.has(key)) void release(key);
    },
    async releaseAll(): Promise<void> {
      await Promise.all([...owned.keys()].map(release));
    },
  };
};
export type Ownerships = ReturnType<typeof ownerships>;
