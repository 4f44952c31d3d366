// Proves the local broker works with kafkajs: topic admin, idempotent produce, consumer group,
// a consume-transform-produce transaction (committed and aborted), read_committed isolation.
// Usage: node infra/kafka/smoke.mjs [bootstrap]   (default: DSPEX_KAFKA_BROKERS or 127.0.0.1:19092)
import { randomUUID } from "node:crypto";
import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;
const brokers = (process.argv[2] ?? process.env.DSPEX_KAFKA_BROKERS ?? "127.0.0.1:19092").split(",");
const kafka = new Kafka({ clientId: "dspex-smoke", brokers, logLevel: logLevel.WARN });
const run = randomUUID().slice(0, 8);
const input = `smoke.${run}.in`;
const output = `smoke.${run}.out`;
const check = (condition, message) => {
  if (!condition) throw new Error(`smoke: ${message}`);
};
const elapsed = (since) => `${Date.now() - since} ms`;

/** Reads every record of `topic` with a fresh group until `count` arrived (or `ms` passed). */
const readAll = async (topic, count, isolation, ms = 15_000) => {
  const consumer = kafka.consumer({
    groupId: `smoke-${randomUUID()}`,
    readUncommitted: isolation === "uncommitted",
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const values = [];
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value.toString());
        if (values.length >= count) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return values;
};

const admin = kafka.admin();
await admin.connect();
let t = Date.now();
await admin.createTopics({
  waitForLeaders: true,
  topics: [input, output].map((topic) => ({
    topic,
    numPartitions: 3,
    configEntries: [{ name: "retention.ms", value: "-1" }],
  })),
});
console.log(`topics created (${elapsed(t)})`);

const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
t = Date.now();
await producer.send({
  topic: input,
  acks: -1,
  messages: Array.from({ length: 10 }, (_, n) => ({
    key: `k${n % 3}`,
    value: `v${n}`,
    headers: { type: "Smoke" },
  })),
});
console.log(`idempotent produce of 10 (${elapsed(t)})`);

t = Date.now();
const consumed = await readAll(input, 10, "committed");
check(consumed.length === 10, `expected 10 consumed, got ${consumed.length}`);
console.log(`consumer group read 10 (${elapsed(t)})`);

// Consume-transform-produce: outputs and the input offsets in one transaction.
const group = `smoke-ctp-${run}`;
const txProducer = kafka.producer({
  transactionalId: `smoke-tx-${run}`,
  idempotent: true,
  maxInFlightRequests: 1,
});
await txProducer.connect();
t = Date.now();
const committedTx = await txProducer.transaction();
await committedTx.send({ topic: output, messages: [{ key: "k", value: "committed-1" }] });
await committedTx.sendOffsets({
  consumerGroupId: group,
  topics: [{ topic: input, partitions: [{ partition: 0, offset: "1" }] }],
});
await committedTx.commit();
console.log(`transaction committed with offsets (${elapsed(t)})`);

const abortedTx = await txProducer.transaction();
await abortedTx.send({ topic: output, messages: [{ key: "k", value: "aborted-1" }] });
await abortedTx.abort();

const committedView = await readAll(output, 1, "committed", 5_000);
const uncommittedView = await readAll(output, 2, "uncommitted", 5_000);
check(
  JSON.stringify(committedView) === JSON.stringify(["committed-1"]),
  `read_committed saw ${committedView}`,
);
check(
  uncommittedView.includes("aborted-1"),
  `read_uncommitted did not see the aborted record: ${uncommittedView}`,
);
const offsets = await admin.fetchOffsets({ groupId: group, topics: [input] });
const partition0 = offsets[0].partitions.find((p) => p.partition === 0);
check(partition0?.offset === "1", `group offset after the transaction: ${JSON.stringify(offsets)}`);
console.log("read_committed sees only the committed transaction; offsets committed with it");

await txProducer.disconnect();
await producer.disconnect();
await admin.deleteTopics({ topics: [input, output] });
await admin.disconnect();
console.log(`smoke: ok (${brokers.join(",")})`);
