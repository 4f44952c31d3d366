import type { TopicPartition } from "./log.ts";

/**
 * Co-partitioned assignment (Kafka Streams' rule): the inputs of a group are split into tasks, task p being
 * partition p of every topic the group reads, and a task goes to one member whole. A processor's state for
 * a key then lives with every input about that key, whichever topic it came on.
 */

/** How many tasks the topics make: as many as the topic with the most partitions has. */
export const taskCount = (partitionCounts: readonly number[]): number => Math.max(0, ...partitionCounts);

/**
 * Sticky, balanced assignment of tasks 0..tasks-1 to the live members: every member keeps what it has up
 * to its fair share; the rest goes to members under their share. Pure, so every member computes the same
 * answer from the same inputs.
 */
export const assignTasks = (
  tasks: number,
  members: readonly string[],
  current: ReadonlyMap<number, string>,
): Map<number, string> => {
  const result = new Map<number, string>();
  if (members.length === 0) return result;
  const sorted = [...new Set(members)].sort();
  const base = Math.floor(tasks / sorted.length);
  const extra = tasks % sorted.length;
  const share = new Map(sorted.map((m, i) => [m, base + (i < extra ? 1 : 0)]));
  const owned = new Map(sorted.map((m) => [m, 0]));
  const unplaced: number[] = [];
  for (let task = 0; task < tasks; task++) {
    const holder = current.get(task);
    if (holder !== undefined && owned.has(holder) && owned.get(holder)! < share.get(holder)!) {
      result.set(task, holder);
      owned.set(holder, owned.get(holder)! + 1);
    } else unplaced.push(task);
  }
  for (const task of unplaced) {
    const taker = sorted.find((m) => owned.get(m)! < share.get(m)!)!;
    result.set(task, taker);
    owned.set(taker, owned.get(taker)! + 1);
  }
  return result;
};

/** The topic-partitions of the given tasks: partition p of each topic that has one. */
export const partitionsOfTasks = (
  tasks: Iterable<number>,
  topics: ReadonlyArray<{ topic: string; partitions: number }>,
): TopicPartition[] => {
  const owned = [...tasks].sort((a, b) => a - b);
  return topics.flatMap(({ topic, partitions }) =>
    owned.filter((p) => p < partitions).map((partition) => ({ topic, partition })),
  );
};

/** The partitions in `next` and not in `previous` (assigned), and the other way round (revoked). */
export const assignmentChange = (
  previous: readonly TopicPartition[],
  next: readonly TopicPartition[],
): { assigned: TopicPartition[]; revoked: TopicPartition[] } => {
  const id = (tp: TopicPartition) => `${tp.topic}\u0000${tp.partition}`;
  const before = new Set(previous.map(id));
  const after = new Set(next.map(id));
  return {
    assigned: next.filter((tp) => !before.has(id(tp))),
    revoked: previous.filter((tp) => !after.has(id(tp))),
  };
};

export const topicPartitionId = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;
