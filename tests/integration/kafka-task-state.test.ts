/**
 * A task's state must be what its group committed, or the pipeline loses requests: two ways a cluster soak
 * lost them (63 of 6,753, two runs).
 * - Kafka record timestamps are the producers' clocks (CreateTime): a record that waited in a producer's
 *   retries through an outage is older than records appended before it. A worker's late StepCompleted was
 *   folded, on a rebuild sorted by time, before the timeout that had failed its attempt: the rebuilt task
 *   took the execution as done while the live one had retried it. A rebuild keeps each partition in offset
 *   order.
 * - A commit that failed may have gone in (its answer lost with the broker): the runtime kept the state as
 *   it was before the batch, and the batch, committed, was never handed over again — a request whose
 *   dispatch committed that way was unknown to its task, so its StepCompleted was ignored.
 */
import { Kafka, logLevel } from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { type Processor, rebuildTask, runProcessor } from "../../processors/runtime/index.ts";
import { encodeEvent } from "../../streams/codec.ts";
import type { DspexEvent } from "../../streams/events/index.ts";
import { type KafkaLog, openKafkaLog } from "../../streams/kafka/log.ts";
import { physicalTopic } from "../../streams/kafka/names.ts";
import { freshKafkaConfig, kafkaForTests } from "../support/kafka.ts";
import { untilCaughtUp } from "../support/waits.ts";
import { requested } from "../unit/processors/fixtures.ts";

const found = kafkaForTests();
if ("skipReason" in found) console.log(`[kafka-task-state] skipped: ${found.skipReason}`);

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

describe.skipIf("skipReason" in found)("a task's state on Kafka", () => {
  const logs: KafkaLog[] = [];
  afterAll(async () => {
    await Promise.all(logs.map((log) => log.close()));
  });

  it("is rebuilt with each partition in offset order, the topics merged by time, whatever the producers' clocks", async () => {
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

  it("reads a task's state back from the log after a commit whose answer was lost: what committed is in it", async () => {
    let answersLost = 0;
    const log = await openKafkaLog(freshKafkaConfig(), {
      afterTransactionCommit: () => {
        if (answersLost++ > 0) return;
        throw Object.assign(new Error("the commit's answer was lost (a test)"), { retriable: true });
      },
    });
    logs.push(log);
    const handled: Processor<string[]> = { ...order, name: "handled", topics: ["in"] };
    await log.ensureTopics([{ topic: "in", partitions: 1 }]);
    const ids = ["r0", "r1", "r2"];
    await log.append(
      ids.map((id) => ({ ...encodeEvent(requested(id, "qa", { question: "q" })), topic: "in" })),
    );
    const running = runProcessor(log, handled, { maxBatch: 1 });
    try {
      await running.ready;
      await untilCaughtUp(log, { handled: ["in"] });
      expect(answersLost).toBeGreaterThan(1);
      // Kept as it was when the commit failed, the state would miss r0: its commit went in, so it is never
      // handed over again.
      expect(running.states().get(0)).toEqual(ids);
    } finally {
      await running.stop();
    }
  }, 90_000);
});
