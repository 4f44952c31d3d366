/**
 * Consume-transform-produce on a real broker: a process killed between producing its outputs and
 * committing its transaction leaves nothing visible; the next member of the group redoes the batch,
 * and read_committed readers see every output exactly once.
 */
import { randomUUID } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { type KafkaLog, type KafkaLogOptions, openKafkaLog } from "../../streams/kafka/log.ts";
import { physicalTopic } from "../../streams/kafka/names.ts";
import type { AppendRecord, RecordBatch } from "../../streams/log.ts";
import { freshKafkaConfig, kafkaForTests } from "../support/kafka.ts";
import { killHard, spawnTs } from "../support/processes.ts";

const childScript = new URL("./kafka-transaction-child.ts", import.meta.url).pathname;
const found = kafkaForTests();
if ("skipReason" in found) console.log(`[kafka-transactions] skipped: ${found.skipReason}`);

/** Everything in a topic up to its high watermark, read by a plain kafkajs consumer (not the backend). */
const readRaw = async (brokers: string, topic: string, isolation: "read_committed" | "read_uncommitted") => {
  const kafka = new Kafka({
    clientId: "dspex-test-reader",
    brokers: brokers.split(","),
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const [end] = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const highWatermark = Number(end!.high);
  const consumer = kafka.consumer({
    groupId: `dspex-test-${randomUUID()}`,
    readUncommitted: isolation === "read_uncommitted",
    maxWaitTimeInMs: 200,
  });
  const values: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise<void>((resolve) => {
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (Number(payload.lastOffset) + 1 >= highWatermark) resolve();
    });
    void consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value!.toString());
      },
    });
  });
  await consumer.disconnect();
  return values;
};

const transform = (batch: RecordBatch, output: string): AppendRecord[] =>
  batch.records.map((r) => ({ topic: output, key: r.key, value: `out-${r.value.toString()}` }));

describe.skipIf("skipReason" in found)("Kafka transactions (consume-transform-produce)", () => {
  const logs: KafkaLog[] = [];
  afterAll(async () => {
    await Promise.all(logs.map((log) => log.close()));
  });

  /** A fresh log with an input topic holding `inputs` and an empty output topic, one partition each. */
  const transformerLog = async (inputs: string[], options: KafkaLogOptions = {}) => {
    const config = freshKafkaConfig();
    const log = await openKafkaLog(config, options);
    logs.push(log);
    const [input, output, group] = ["in", "out", "transformer"];
    await log.ensureTopics([
      { topic: input, partitions: 1 },
      { topic: output, partitions: 1 },
    ]);
    await log.append(inputs.map((value) => ({ topic: input, key: "k", value })));
    const outputs = async () => (await log.read(output)).map((r) => r.value.toString());
    /** Consumes in the group, transforming each batch in a transaction, until offset `last` is committed. */
    const transformUntil = (last: number, handed: string[] = [], maxBatch = 500) =>
      new Promise<void>((resolve, reject) => {
        const consumer = log.consume(
          { group, topics: [input], autoCommit: false, maxBatch },
          async (batch) => {
            handed.push(...batch.records.map((r) => r.value.toString()));
            await batch.commitWith(transform(batch, output));
            if (batch.records.at(-1)!.offset === last) {
              resolve();
              void consumer.stop();
            }
          },
        );
        consumer.done.catch(reject);
      });
    return { config, log, input, output, group, outputs, transformUntil };
  };

  it("shows the output of a process killed between produce and commit exactly once to read_committed readers", async () => {
    const brokers = "brokers" in found ? found.brokers : "";
    const { config, log, input, output, group, outputs, transformUntil } = await transformerLog([
      "1",
      "2",
      "3",
    ]);

    const child = spawnTs(childScript, [JSON.stringify(config), JSON.stringify({ input, output, group })]);
    await child.waitFor((lines) => lines.includes("produced, not committed"), 60_000);
    await killHard(child.child);

    const physicalOutput = physicalTopic(config.namespace!, output);
    // The dead process's outputs are in the log, inside a transaction that never committed...
    expect(await readRaw(brokers, physicalOutput, "read_uncommitted")).toEqual(["out-1", "out-2", "out-3"]);
    // ...so read_committed readers see none of them, and the input offsets were not committed either.
    expect(await log.read(output)).toEqual([]);
    expect(await log.committed(group, input)).toEqual(new Map());

    // The next member of the group redoes the batch; its producer (same transactional id) fences the
    // dead one, whose transaction the broker aborts.
    await transformUntil(2);

    // A transaction's outputs and offsets become visible a moment after its commit (the markers).
    await expect.poll(outputs, { timeout: 10_000 }).toEqual(["out-1", "out-2", "out-3"]);
    await expect.poll(() => log.committed(group, input), { timeout: 10_000 }).toEqual(new Map([[0, 3]]));
    expect(await readRaw(brokers, physicalOutput, "read_committed")).toEqual(["out-1", "out-2", "out-3"]);
    // Both attempts are stored; only the committed one is visible.
    expect(await readRaw(brokers, physicalOutput, "read_uncommitted")).toEqual([
      "out-1",
      "out-2",
      "out-3",
      "out-1",
      "out-2",
      "out-3",
    ]);
  }, 120_000);

  it("hands over no record twice when a commit went in but its answer was lost", async () => {
    let answersLost = 0;
    const { outputs, transformUntil } = await transformerLog(["1", "2", "3", "4", "5"], {
      afterTransactionCommit: () => {
        if (answersLost++ > 0) return;
        throw Object.assign(new Error("the commit's answer was lost (a test)"), { retriable: true });
      },
    });
    const handed: string[] = [];
    await transformUntil(4, handed, 3);
    expect(answersLost).toBeGreaterThan(1);
    expect(handed).toEqual(["1", "2", "3", "4", "5"]);
    await expect.poll(outputs, { timeout: 10_000 }).toEqual(["out-1", "out-2", "out-3", "out-4", "out-5"]);
  }, 120_000);

  it("replaces a producer that lost its place in the broker's sequence: the batch is redone once, the consumer goes on", async () => {
    let broken = 0;
    const { outputs, transformUntil } = await transformerLog(["1", "2", "3"], {
      beforeTransactionCommit: () => {
        if (broken++ > 0) return;
        throw Object.assign(new Error("The broker received an out of order sequence number (a test)"), {
          type: "OUT_OF_ORDER_SEQUENCE_NUMBER",
          retriable: false,
        });
      },
    });
    const handed: string[] = [];
    await transformUntil(2, handed);
    expect(broken).toBeGreaterThan(1);
    expect(handed).toEqual(["1", "2", "3", "1", "2", "3"]);
    await expect.poll(outputs, { timeout: 10_000 }).toEqual(["out-1", "out-2", "out-3"]);
  }, 120_000);

  it("commits offsets from outside the group again after its committing producer lost its state", async () => {
    let broken = 0;
    const { log, input } = await transformerLog(["1", "2", "3"], {
      beforeTransactionCommit: () => {
        if (broken++ > 0) return;
        throw new Error(
          'Transaction state exception: Cannot call "beginTransaction" in state "ABORTING" (a test)',
        );
      },
    });
    await log.commit("outside", [{ topic: input, partition: 0, offset: 2 }]);
    await log.commit("outside", [{ topic: input, partition: 0, offset: 3 }]);
    expect(broken).toBe(3);
    expect(await log.committed("outside", input)).toEqual(new Map([[0, 3]]));
  }, 120_000);
});
