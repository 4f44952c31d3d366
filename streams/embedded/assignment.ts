/** A partition of a topic, as `topic` + `partition`. */
export interface TopicPartition {
  topic: string;
  partition: number;
}

const id = (tp: TopicPartition) => `${tp.topic}\u0000${tp.partition}`;

/**
 * Sticky, balanced assignment of partitions to the live members of a group: every member keeps
 * what it has up to its fair share; the rest goes to members under their share. Pure, so every
 * member computes the same answer from the same inputs.
 */
export const assignPartitions = (
  partitions: readonly TopicPartition[],
  members: readonly string[],
  current: ReadonlyMap<string, string>,
): Map<string, string> => {
  const result = new Map<string, string>();
  if (members.length === 0) return result;
  const sortedMembers = [...members].sort();
  const base = Math.floor(partitions.length / sortedMembers.length);
  const extra = partitions.length % sortedMembers.length;
  const share = new Map(sortedMembers.map((m, i) => [m, base + (i < extra ? 1 : 0)]));
  const owned = new Map(sortedMembers.map((m) => [m, 0]));
  const sorted = [...partitions].sort((a, b) => id(a).localeCompare(id(b)));
  const unplaced: string[] = [];
  for (const tp of sorted) {
    const key = id(tp);
    const holder = current.get(key);
    if (holder !== undefined && owned.has(holder) && owned.get(holder)! < share.get(holder)!) {
      result.set(key, holder);
      owned.set(holder, owned.get(holder)! + 1);
    } else {
      unplaced.push(key);
    }
  }
  for (const key of unplaced) {
    const taker = sortedMembers.find((m) => owned.get(m)! < share.get(m)!)!;
    result.set(key, taker);
    owned.set(taker, owned.get(taker)! + 1);
  }
  return result;
};

export const partitionId = id;
