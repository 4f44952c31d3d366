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

/** Fetched records waiting to be handed over; `settle` tells kafkajs the fetch is done (or failed). */
export interface Gathered extends PendingRecords {
  settle(error?: unknown): void;
}

/**
 * Hands the runs of gathered fetches to `hand` one at a time, oldest record first (`nextRun`). A fetch no
 * longer `current` (its partition paused, revoked or its consumer restarting) is settled without its rest:
 * kafkajs fetches that again. `hand` resolves false to stop handing over; when it throws (a commit refused
 * by a rebalance) every fetch is settled and kafkajs fetches again what it had not resolved.
 */
export const inTimeOrder = <F extends Gathered>(options: {
  maxBatch: number;
  hand(fetched: F, run: LogRecord[]): Promise<boolean>;
  current(fetched: F): boolean;
  stopping(): boolean;
  fail(error: unknown): void;
}): ((fetched: F) => void) => {
  const gathered: F[] = [];
  const settle = (fetched: F, error?: unknown) => {
    gathered.splice(gathered.indexOf(fetched), 1);
    fetched.settle(error);
  };
  const settleAll = () => {
    for (const fetched of gathered.splice(0)) fetched.settle();
  };
  const drain = async () => {
    await new Promise((resolve) => setImmediate(resolve));
    for (;;) {
      for (const fetched of [...gathered]) if (!options.current(fetched)) settle(fetched);
      if (options.stopping()) break;
      const next = nextRun(gathered, options.maxBatch);
      if (!next) break;
      const fetched = gathered[next.index]!;
      const run = fetched.records.slice(fetched.handed, fetched.handed + next.count);
      let carryOn: boolean;
      try {
        carryOn = await options.hand(fetched, run);
      } catch (error) {
        settle(fetched, error);
        settleAll();
        return;
      }
      if (!carryOn) break;
      fetched.handed += run.length;
      if (fetched.handed >= fetched.records.length) settle(fetched);
    }
    settleAll();
  };
  let draining = false;
  const startDraining = () => {
    if (draining) return;
    draining = true;
    drain()
      .catch(options.fail)
      .finally(() => {
        draining = false;
        if (gathered.length > 0) startDraining();
      });
  };
  return (fetched) => {
    gathered.push(fetched);
    startDraining();
  };
};
