/**
 * Merges lists that are each in log order (a partition's records by offset) into one, the oldest next item
 * first; ties go to the earlier list. A list's own order is never changed: timestamps are the producers'
 * clocks (Kafka's CreateTime), so a record that waited in a producer's retries through an outage is older
 * than records appended before it — sorted by time, it would be folded before them.
 */
export const mergeByTime = <T>(lists: readonly (readonly T[])[], timeOf: (item: T) => number): T[] => {
  if (lists.length === 1) return [...lists[0]!];
  const next = lists.map(() => 0);
  const merged: T[] = [];
  for (;;) {
    let oldest = -1;
    for (const [i, list] of lists.entries()) {
      if (next[i]! >= list.length) continue;
      if (oldest < 0 || timeOf(list[next[i]!]!) < timeOf(lists[oldest]![next[oldest]!]!)) oldest = i;
    }
    if (oldest < 0) return merged;
    merged.push(lists[oldest]![next[oldest]!++]!);
  }
};
