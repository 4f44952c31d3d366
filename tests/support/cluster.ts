/**
 * A three-node Kafka cluster of a test's own (infra/kafka/start.sh --cluster): three KRaft nodes, each
 * broker + controller, replication factor 3 and min.insync.replicas 2, on free loopback ports with a
 * temporary data folder. For tests that kill a broker with SIGKILL while work runs and bring it back: a
 * killed node keeps its data, so start() makes it rejoin and catch up. Never the shared broker of the test
 * run (tests/support/kafka.ts), nor the default cluster of start.sh --cluster (ports 19192, 19292, 19392).
 * stop() — or, if a test never got there, a watcher once the test process is gone — kills the nodes and
 * removes the folder.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { freemem, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Admin } from "kafkajs";
import { withKafkaAdmin } from "./kafka-admin.ts";
import { ownBrokerSkipReason } from "./own-broker.ts";

const run = promisify(execFile);
const infra = fileURLToPath(new URL("../../infra/kafka/", import.meta.url));
const SIZE = 3;

/** `count` distinct ports nobody listens on right now (the kernel picks them, all held until all are picked). */
const freePorts = async (count: number): Promise<number[]> => {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", resolve);
      });
    }
    return servers.map((server) => (server.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
};

/** Why a test can't have a cluster of its own here, if it can't: what a broker of its own needs, and memory. */
export const clusterSkipReason = (): string | undefined => {
  const reason = ownBrokerSkipReason();
  if (reason) return reason;
  const freeGiB = freemem() / 1024 ** 3;
  if (freeGiB < 1.5) return `${freeGiB.toFixed(1)} GiB of free memory; three Kafka nodes need about 1.5`;
  return undefined;
};

export interface ClusterNode {
  /** The node.id (1..3), as kafkajs reports it (leader, isr, replicas). */
  id: number;
  /** Client port on 127.0.0.1. */
  port: number;
  controllerPort: number;
  /** The JVM's PID; undefined while the node is killed. */
  pid: number | undefined;
}

export interface Cluster {
  /** The bootstrap list, "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3". */
  brokers: string;
  nodes: ClusterNode[];
  /** The node id leading `partition` of `topic` (-1 while it has none). */
  leaderOf(topic: string, partition: number): Promise<number>;
  /** Resolves once every partition of `topics` has all its replicas in sync (a restarted node caught up). */
  waitUntilInSync(topics: string[], timeoutMs?: number): Promise<void>;
  /** SIGKILL to the node (node.sh kill): no clean shutdown; its data stays. */
  kill(nodeId: number): Promise<void>;
  /** Starts a killed or stopped node again on its ports and data (node.sh start), until it is registered. */
  start(nodeId: number): Promise<void>;
  /** Kills every node and removes the data folder. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const startCluster = async (): Promise<Cluster> => {
  const data = mkdtempSync(join(tmpdir(), "dspex-kafka-cluster-"));
  const ports = await freePorts(2 * SIZE);
  const nodes: ClusterNode[] = Array.from({ length: SIZE }, (_, i) => ({
    id: i + 1,
    port: ports[i]!,
    controllerPort: ports[SIZE + i]!,
    pid: undefined,
  }));
  const env = {
    ...process.env,
    DSPEX_KAFKA_CLUSTER_PORTS: nodes.map((node) => node.port).join(","),
    DSPEX_KAFKA_CLUSTER_CONTROLLER_PORTS: nodes.map((node) => node.controllerPort).join(","),
    DSPEX_KAFKA_CLUSTER_DATA: data,
  };
  const script = async (name: string, ...args: string[]) => {
    try {
      const { stdout } = await run("bash", [`${infra}${name}.sh`, "--cluster", String(SIZE), ...args], {
        env,
        maxBuffer: 16 * 1024 * 1024,
      });
      return stdout.trim();
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr?.trim().split("\n").slice(-8).join("\n");
      throw new Error(`infra/kafka/${name}.sh ${args.join(" ")} failed:\n${stderr}`, { cause: error });
    }
  };
  /** The node's live JVM, read from its PID file and checked against /proc (never a recycled PID). */
  const livePid = (id: number): number | undefined => {
    try {
      const pid = Number(readFileSync(join(data, `node-${id}`, "kafka.pid"), "utf8").trim());
      const command = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      return command.includes("kafka.Kafka") && command.includes(data) ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  let stopped = false;
  const killAllNow = () => {
    for (const node of nodes) {
      const pid = livePid(node.id);
      if (pid !== undefined) process.kill(pid, "SIGKILL");
      node.pid = undefined;
    }
    rmSync(data, { recursive: true, force: true });
  };
  // A test process that ends without its afterAll must not leave three JVMs behind. Not an "exit"
  // handler: vitest ends its fork workers with SIGTERM, which runs none. A watcher outside the process
  // kills the nodes (node.sh kill) and removes the folder once this process is gone.
  const nodeIds = nodes.map((node) => node.id).join(" ");
  const watcher = spawn(
    "bash",
    [
      "-c",
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done
       for id in ${nodeIds}; do bash "${infra}node.sh" --cluster ${SIZE} kill "$id"; done
       rm -rf "${data}"`,
    ],
    { env, detached: true, stdio: "ignore" },
  );
  watcher.unref();
  const stopWatching = () => {
    if (watcher.exitCode === null) watcher.kill();
  };

  const withAdmin = <T>(use: (admin: Admin) => Promise<T>): Promise<T> =>
    withKafkaAdmin(
      nodes.map((node) => `127.0.0.1:${node.port}`),
      use,
      { connectionTimeout: 1_000 },
    );
  /** A topic's partitions; a broker that has not yet heard of a new topic is asked again. */
  const partitionsOf = async (topic: string) => {
    for (let attempt = 1; ; attempt++) {
      try {
        const { topics } = await withAdmin((admin) => admin.fetchTopicMetadata({ topics: [topic] }));
        return topics[0]!.partitions;
      } catch (error) {
        if (attempt >= 10) throw error;
        await sleep(200 * attempt);
      }
    }
  };

  let brokers: string;
  try {
    brokers = (await script("start")).split("\n").at(-1)!;
  } catch (error) {
    stopped = true;
    stopWatching();
    killAllNow();
    throw error;
  }
  for (const node of nodes) node.pid = livePid(node.id);

  return {
    brokers,
    nodes,
    async leaderOf(topic, partition) {
      const found = (await partitionsOf(topic)).find((p) => p.partitionId === partition);
      if (!found) throw new Error(`${topic} has no partition ${partition}`);
      return found.leader;
    },
    async waitUntilInSync(topics, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const lagging: string[] = [];
        for (const topic of topics) {
          for (const p of await partitionsOf(topic)) {
            if (p.isr.length < p.replicas.length) lagging.push(`${topic}/${p.partitionId} isr [${p.isr}]`);
          }
        }
        if (lagging.length === 0) return;
        if (Date.now() > deadline) throw new Error(`replicas not in sync after ${timeoutMs} ms: ${lagging}`);
        await sleep(250);
      }
    },
    async kill(nodeId) {
      await script("node", "kill", String(nodeId));
      nodes[nodeId - 1]!.pid = undefined;
    },
    async start(nodeId) {
      await script("node", "start", String(nodeId));
      nodes[nodeId - 1]!.pid = livePid(nodeId);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      stopWatching();
      killAllNow();
    },
  };
};
