/**
 * Kafka record timestamps are the producers' clocks (CreateTime): a record that waited in a producer's
 * retries through an outage is older than records appended before it. A soak lost 35 requests that way: a
 * worker's late StepCompleted was folded, on a rebuild sorted by time, before the timeout that had failed
 * its attempt, so the rebuilt pipeline thought the execution done while the live one had retried it and no
 * ExecutionCompleted was ever written. A rebuild (and a merged read) keeps each partition in offset order.
 */
import { Kafka, logLevel } from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { type Processor, rebuildTask } from "../../processors/runtime/index.ts";
import { encodeEvent } from "../../streams/codec.ts";
import type { DspexEvent } from "../../streams/events/index.ts";
import { type KafkaLog, openKafkaLog } from "../../streams/kafka/log.ts";
import { physicalTopic } from "../../streams/kafka/names.ts";
import { freshKafkaConfig, kafkaForTests } from "../support/kafka.ts";
import { requested } from "../unit/processors/fixtures.ts";

const found = kafkaForTests();
if ("skipReason" in found) console.log(`[kafka-rebuild-order] skipped: ${found.skipReason}`);

/** Folds the request ids of its inputs in the order it is handed them. */
const order: Processor<string[]> = {
  name: "order",
  topics: ["steps", "executions"],
  initialState: [],
  handle: (seen, event: DspexEvent) => ({
    state: event.type === "ExecutionRequested" ? [...seen, event.data.requestId] : seen,
    emit: [],
  }),
};

describe.skipIf("skipReason" in found)("a rebuild on Kafka with producer clocks out of order", () => {
  const logs: KafkaLog[] = [];
  afterAll(async () => {
    await Promise.all(logs.map((log) => log.close()));
  });

  it("folds each partition in offset order, the topics merged by time", async () => {
    const config = freshKafkaConfig();
    const log = await openKafkaLog(config);
    logs.push(log);
    await log.ensureTopics([
      { topic: "steps", partitions: 1 },
      { topic: "executions", partitions: 1 },
    ]);
    const now = Date.now();
    const producer = new Kafka({
      brokers: String(config.brokers).split(","),
      logLevel: logLevel.NOTHING,
    }).producer();
    await producer.connect();
    const send = async (topic: string, requestId: string, timestamp: number) => {
      const { key, value, headers } = encodeEvent(requested(requestId, "qa", { question: "q" }));
      await producer.send({
        topic: physicalTopic(config.namespace!, topic),
        messages: [{ key, value: Buffer.from(value), headers, timestamp: String(timestamp) }],
      });
    };
    try {
      await send("steps", "step-appended-first", now);
      await send("steps", "step-retried-late", now - 60_000); // created a minute earlier, appended after
      await send("executions", "execution", now - 30_000);
    } finally {
      await producer.disconnect();
    }
    await log.commit("order", [
      { topic: "steps", partition: 0, offset: 2 },
      { topic: "executions", partition: 0, offset: 1 },
    ]);

    const rebuilt = await rebuildTask(log, order, 0, undefined);
    // Sorted by time alone, the late record would come first.
    expect(rebuilt.state).toEqual(["execution", "step-appended-first", "step-retried-late"]);
    const read = (await log.read("steps")).map((record) => record.offset);
    expect(read).toEqual([0, 1]);
  }, 60_000);
});
