// Waits until the broker answers real admin calls (cluster metadata, topic list), or fails.
// Usage: node ready.mjs <bootstrap> <pid> <timeoutSeconds>
// Fails early when the broker process exits. Used by start.sh; no output on success but one line.
import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;
const [bootstrap = "127.0.0.1:19092", pidText = "", timeoutText = "90"] = process.argv.slice(2);
const pid = Number(pidText);
const deadline = Date.now() + Number(timeoutText) * 1000;

const alive = () => {
  if (!pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const probe = async () => {
  const kafka = new Kafka({
    clientId: "dspex-ready",
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    await admin.listTopics();
    return cluster;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
};

let lastError = "no attempt";
while (Date.now() < deadline) {
  if (!alive()) {
    console.error(`kafka: the broker process ${pid} exited before it became ready`);
    process.exit(1);
  }
  try {
    const cluster = await probe();
    console.error(
      `kafka: ready at ${bootstrap} (cluster ${cluster.clusterId}, controller ${cluster.controller})`,
    );
    process.exit(0);
  } catch (error) {
    lastError = error instanceof Error ? error.message : String(error);
    await sleep(250);
  }
}
console.error(`kafka: no answer from ${bootstrap}: ${lastError}`);
process.exit(1);
