/**
 * A consumer whose batches emit nothing still commits each batch's offsets in a transaction. Right after
 * a commit the broker answers the next AddOffsetsToTxn with CONCURRENT_TRANSACTIONS while it writes the
 * previous transaction's markers; kafkajs does not retry that call, so such commits failed and stopped
 * the consumer — the pipeline of `dspex demo --backend kafka` stalled that way mid-optimization. The
 * window is the broker's marker writing, so this fails reliably only on a busy broker (it failed after two
 * commits while other suites ran); it runs the pattern that hit it: outputs, then a commit without any.
 */
import { afterAll, describe, expect, it } from "vitest";
import { type KafkaLog, openKafkaLog } from "../../streams/kafka/log.ts";
import { freshKafkaConfig, kafkaForTests } from "../support/kafka.ts";

const found = kafkaForTests();
if ("skipReason" in found) console.log(`[kafka-offsets-only-commits] skipped: ${found.skipReason}`);

describe.skipIf("skipReason" in found)("Kafka commits without outputs", () => {
  const logs: KafkaLog[] = [];
  afterAll(async () => {
    await Promise.all(logs.map((log) => log.close()));
  });

  it("commits batches back to back, every other one without outputs, and never stops the consumer", async () => {
    const log = await openKafkaLog(freshKafkaConfig());
    logs.push(log);
    const count = 150;
    await log.ensureTopics([
      { topic: "in", partitions: 1 },
      { topic: "out", partitions: 8 },
    ]);
    await log.append(Array.from({ length: count }, (_, i) => ({ topic: "in", key: "k", value: String(i) })));

    let handled = 0;
    const consumer = log.consume(
      { group: "quiet", topics: ["in"], autoCommit: false, maxBatch: 1 },
      async (batch) => {
        const outputs = batch.records[0]!.offset % 2 === 1 ? ["a", "b", "c", "d"] : [];
        await batch.commitWith(outputs.map((key) => ({ topic: "out", key, value: "x" })));
        handled += batch.records.length;
        if (handled >= count) void consumer.stop();
      },
    );
    await consumer.done;
    expect(handled).toBe(count);
    expect(await log.committed("quiet", "in")).toEqual(new Map([[0, expect.any(Number)]]));
    expect((await log.committed("quiet", "in")).get(0)).toBeGreaterThanOrEqual(count);
  }, 60_000);
});
