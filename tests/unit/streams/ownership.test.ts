import type { Producer } from "kafkajs";
import { describe, expect, it } from "vitest";
import { committedUpTo, type Ownership, uncommitted } from "../../../streams/kafka/ownership.ts";
import type { LogRecord } from "../../../streams/log.ts";

const recordsAt = (...offsets: number[]): LogRecord[] =>
  offsets.map((offset) => ({
    topic: "dspex.requests",
    partition: 0,
    offset,
    key: "k",
    value: Buffer.from("{}"),
    headers: {},
    timestamp: 0,
  }));

/** Taken over where the group stood at offset `committed` (no producer is used here). */
const takenOverAt = (committed: number): Ownership => ({ producer: {} as Producer, committed });

const offsetsOf = (records: readonly LogRecord[]) => records.map((r) => r.offset);

describe("a partition's ownership: what its member hands over again", () => {
  it("drops what the group had committed when the member took the partition over", () => {
    const ownership = takenOverAt(3);
    expect(offsetsOf(uncommitted(ownership, recordsAt(1, 2, 3, 4)))).toEqual([3, 4]);
  });

  it("drops what the member committed itself since, when kafkajs hands it over again", () => {
    // Given a member that took the partition over at 0 and committed records 0..4
    const ownership = takenOverAt(0);
    committedUpTo(ownership, 5);
    // When kafkajs, after a rejoin that kept the partition here, fetches from 2 again
    const again = uncommitted(ownership, recordsAt(2, 3, 4, 5, 6));
    // Then only what was not committed is handed over
    expect(offsetsOf(again)).toEqual([5, 6]);
  });

  it("never moves back: a late, older commit leaves the newer one", () => {
    const ownership = takenOverAt(0);
    committedUpTo(ownership, 7);
    committedUpTo(ownership, 4);
    expect(ownership.committed).toBe(7);
  });
});
