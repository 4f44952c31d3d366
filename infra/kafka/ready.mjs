// Waits until the broker answers real admin calls (cluster metadata, topic list), or fails.
// Usage: node ready.mjs <bootstrap> <pid[,pid…]> <timeoutSeconds> [nodeId,nodeId…]
// A cluster: <bootstrap> is a comma-separated list, and the call succeeds once every node id of the last
// argument (default 1) is among the brokers the cluster reports (registered and unfenced).
// Fails early when a broker process exits. Used by start.sh; no output on success but one line.
import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;
const [bootstrap = "127.0.0.1:19092", pidText = "", timeoutText = "90", nodesText = "1"] =
  process.argv.slice(2);
const pids = pidText.split(",").filter(Boolean).map(Number);
const nodeIds = nodesText.split(",").map(Number);
const deadline = Date.now() + Number(timeoutText) * 1000;

const alive = (pid) => {
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
    brokers: bootstrap.split(","),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    const registered = cluster.brokers.map((broker) => broker.nodeId);
    const missing = nodeIds.filter((id) => !registered.includes(id));
    if (missing.length > 0) throw new Error(`node ${missing.join(", ")} not registered yet`);
    await admin.listTopics();
    return cluster;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
};

let lastError = "no attempt";
while (Date.now() < deadline) {
  const exited = pids.find((pid) => !alive(pid));
  if (exited !== undefined) {
    console.error(`kafka: the broker process ${exited} exited before it became ready`);
    process.exit(1);
  }
  try {
    const cluster = await probe();
    const brokers = nodeIds.length > 1 ? `, ${cluster.brokers.length} brokers` : "";
    console.error(
      `kafka: ready at ${bootstrap} (cluster ${cluster.clusterId}, controller ${cluster.controller}${brokers})`,
    );
    process.exit(0);
  } catch (error) {
    lastError = error instanceof Error ? error.message : String(error);
    await sleep(250);
  }
}
console.error(`kafka: no answer from ${bootstrap}: ${lastError}`);
process.exit(1);
