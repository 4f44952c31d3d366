// Proves the three-node cluster of start.sh --cluster survives the loss of a partition leader:
// a topic with the broker's replication (3, min ISR 2), transactions with acks=all, the leader of
// partition 0 killed with SIGKILL (node.sh kill), a transaction while its leaders move, read_committed
// reads exactly what was committed, and the node restarted (node.sh start) rejoins every ISR.
// Usage: node infra/kafka/cluster-smoke.mjs [--one-send] [bootstrap]
//   default bootstrap: bash infra/kafka/status.sh --cluster --brokers; the DSPEX_KAFKA_CLUSTER_* variables
//   it runs with must be those the cluster was started with (node.sh uses them to find the node).
//   --one-send: each transaction writes its three partitions with one send() instead of one per
//   partition. kafkajs 2.2.4 then loses and duplicates records when a leader dies (see README.md).
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;
const infra = fileURLToPath(new URL(".", import.meta.url));
const script = (name, ...args) =>
  execFileSync("bash", [`${infra}${name}.sh`, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
const args = process.argv.slice(2);
const oneSend = args.includes("--one-send");
const bootstrap = args.find((arg) => !arg.startsWith("--"));
const brokers = (bootstrap ?? script("status", "--cluster", "--brokers").trim()).split(",");

// kafkajs's complaints while a broker is gone, counted instead of printed: the failover's footprint.
const complaints = new Map();
const logCreator =
  () =>
  ({ level, log }) => {
    if (level > logLevel.WARN) return;
    const text = `${log.message}${log.error ? `: ${log.error}` : ""}`.replace(
      /\d+\.\d+\.\d+\.\d+:\d+/g,
      "<broker>",
    );
    complaints.set(text, (complaints.get(text) ?? 0) + 1);
  };
// Retries that outlast a failover (~9 s until a dead leader is fenced) for every client: kafkajs's
// transaction calls (AddPartitionsToTxn, EndTxn, FindCoordinator) use the client's retry, not the producer's.
const retry = { retries: 10, initialRetryTime: 300, maxRetryTime: 5000 };
const kafka = new Kafka({ clientId: "dspex-cluster-smoke", brokers, logCreator, retry });
const run = randomUUID().slice(0, 8);
const topic = `smoke.cluster.${run}`;
const group = `smoke-cluster-${run}`;
const check = (condition, message) => {
  if (!condition) throw new Error(`cluster smoke: ${message}`);
};
const began = Date.now();
const say = (text) => console.log(`${((Date.now() - began) / 1000).toFixed(1).padStart(5)}s  ${text}`);
const since = (t) => `${Date.now() - t} ms`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const admin = kafka.admin();
await admin.connect();
const describe = (partitions) =>
  partitions
    .sort((a, b) => a.partitionId - b.partitionId)
    .map((p) => `p${p.partitionId} leader ${p.leader} isr [${p.isr.join(",")}]`)
    .join("; ");
/** `fn` again (up to 10 times) while the broker asked has not yet heard of a new topic. */
const retrying = async (fn) => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= 10 || error.type !== "UNKNOWN_TOPIC_OR_PARTITION") throw error;
      await sleep(100 * attempt);
    }
  }
};
const partitionsOf = async (name) =>
  (await retrying(() => admin.fetchTopicMetadata({ topics: [name] }))).topics[0].partitions;
const topicConfig = async (name, key) => {
  const { resources } = await retrying(() =>
    admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name, configNames: [key] }],
    }),
  );
  return resources[0].configEntries.find((entry) => entry.configName === key)?.configValue;
};

const cluster = await admin.describeCluster();
check(cluster.brokers.length === 3, `expected 3 brokers, got ${cluster.brokers.length}`);
say(`cluster ${cluster.clusterId}: brokers ${cluster.brokers.map((b) => b.nodeId).join(",")}`);

let t = Date.now();
// No replicationFactor: the broker's default.replication.factor, as the dspex Kafka log does (-1).
// Not waitForLeaders (kafkajs's default): it retries only LEADER_NOT_AVAILABLE, and with three brokers the
// one it asks may not know the new topic yet (UNKNOWN_TOPIC_OR_PARTITION); poll the metadata instead.
await admin.createTopics({
  waitForLeaders: false,
  topics: [{ topic, numPartitions: 3, configEntries: [{ name: "retention.ms", value: "-1" }] }],
});
let created = [];
while (created.length !== 3 || created.some((p) => p.leader < 0)) {
  check(Date.now() - t < 30_000, `no leaders for ${topic} after 30 s`);
  created = await partitionsOf(topic).catch(() => []);
  if (created.length !== 3) await sleep(100);
}
check(
  created.every((p) => p.replicas.length === 3),
  `replicas: ${created.map((p) => p.replicas.length)}`,
);
const minIsr = await topicConfig(topic, "min.insync.replicas");
say(`topic ${topic} created (${since(t)}): ${describe(created)}; min.insync.replicas=${minIsr}`);

// acks=all is implied: a transactional producer is idempotent, and kafkajs sends those with acks -1.
const producer = kafka.producer({
  transactionalId: `smoke-cluster-tx-${run}`,
  idempotent: true,
  maxInFlightRequests: 1,
  retry,
});
await producer.connect();
const batch = (name) =>
  Array.from({ length: 30 }, (_, n) => ({ key: `k${n}`, value: `${name}-${n}`, partition: n % 3 }));
/** 30 records (10 per partition) and a group offset in one transaction; its duration in ms. */
const transaction = async (name) => {
  const started = Date.now();
  const tx = await producer.transaction();
  const messages = batch(name);
  if (oneSend) {
    await tx.send({ topic, acks: -1, messages });
  } else {
    // One partition (so one leader) per send: a retry then never mixes brokers (see README.md).
    for (const partition of [0, 1, 2]) {
      await tx.send({ topic, acks: -1, messages: messages.filter((m) => m.partition === partition) });
    }
  }
  await tx.sendOffsets({
    consumerGroupId: group,
    topics: [{ topic, partitions: [{ partition: 0, offset: "1" }] }],
  });
  await tx.commit();
  return Date.now() - started;
};
say(`transaction a: 30 records + offsets committed (${await transaction("a")} ms)`);

for (const internal of ["__transaction_state", "__consumer_offsets"]) {
  const partitions = await partitionsOf(internal);
  check(
    partitions.every((p) => p.replicas.length === 3 && p.isr.length === 3),
    `${internal}: ${describe(partitions)}`,
  );
  const isr = await topicConfig(internal, "min.insync.replicas");
  say(`${internal}: ${partitions.length} partitions, all 3 replicas in sync, min.insync.replicas=${isr}`);
}

const before = await partitionsOf(topic);
const victim = before.find((p) => p.partitionId === 0).leader;
const led = before.filter((p) => p.leader === victim).map((p) => `p${p.partitionId}`);
t = Date.now();
script("node", "kill", String(victim));
const killedAt = Date.now();
say(`killed node ${victim} with SIGKILL (${killedAt - t} ms); it led ${led.join(",")} of ${topic}`);

// While the next transaction runs: when does partition 0 get a new leader?
let newLeaderAfter;
const watch = (async () => {
  while (newLeaderAfter === undefined && Date.now() - killedAt < 60_000) {
    try {
      const leader = (await partitionsOf(topic)).find((p) => p.partitionId === 0).leader;
      if (leader !== victim && leader >= 0) newLeaderAfter = Date.now() - killedAt;
    } catch {}
    await sleep(200);
  }
})();
complaints.clear();
const txB = await transaction("b");
await watch;
say(
  `transaction b committed ${txB} ms after the kill; partition 0 had a new leader after ${newLeaderAfter} ms`,
);
const moved = await partitionsOf(topic);
check(
  moved.every((p) => p.leader !== victim && !p.isr.includes(victim)),
  `after the kill: ${describe(moved)}`,
);
say(`leaders now: ${describe(moved)}`);
for (const [text, count] of complaints) say(`  kafkajs meanwhile: ${count}x ${text.slice(0, 160)}`);

/** Every committed record of the topic, read by a fresh group (read_committed, kafkajs's default). */
const readCommitted = async (count, ms = 30_000) => {
  const consumer = kafka.consumer({ groupId: `smoke-cluster-read-${randomUUID()}` });
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
  await sleep(1000); // anything beyond `count` (a duplicate) would arrive now
  await consumer.disconnect();
  return values;
};
const expectExactly = async (values, names) => {
  const expected = names.flatMap((name) => batch(name).map((m) => m.value));
  const missing = expected.filter((v) => !values.includes(v));
  const duplicated = values.filter((v, i) => values.indexOf(v) !== i);
  if (missing.length > 0 || duplicated.length > 0) {
    const offsets = await admin.fetchTopicOffsets(topic);
    const ends = offsets.map((o) => `p${o.partition} end ${o.high}`).join(", ");
    check(
      false,
      `missing ${missing.length} [${missing}], duplicated ${duplicated.length} [${duplicated}]; ${ends}`,
    );
  }
  check(values.length === expected.length, `read ${values.length}, expected ${expected.length}`);
};
t = Date.now();
await expectExactly(await readCommitted(60), ["a", "b"]);
say(`read_committed with node ${victim} down: exactly the 60 committed records, no duplicates (${since(t)})`);

t = Date.now();
script("node", "start", String(victim));
say(`node ${victim} restarted and registered (${since(t)})`);
const inSync = async (name) => (await partitionsOf(name)).every((p) => p.isr.length === p.replicas.length);
const topics = [topic, "__transaction_state", "__consumer_offsets"];
for (;;) {
  const synced = await Promise.all(topics.map(inSync));
  if (synced.every(Boolean)) break;
  check(
    Date.now() - t < 120_000,
    `node ${victim} not back in every ISR after 120 s: ${describe(await partitionsOf(topic))}`,
  );
  await sleep(250);
}
say(`node ${victim} back in every ISR (${topic}, internal topics) ${since(t)} after the restart`);
say(`  ${describe(await partitionsOf(topic))}`);

say(`transaction c after the rejoin (${await transaction("c")} ms)`);
t = Date.now();
await expectExactly(await readCommitted(90), ["a", "b", "c"]);
say(`read_committed: exactly the 90 committed records (${since(t)})`);

await producer.disconnect();
await admin.deleteTopics({ topics: [topic] });
await admin.disconnect();
say(`cluster smoke: ok (${brokers.join(",")}${oneSend ? ", one send per transaction" : ""})`);
