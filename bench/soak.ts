/**
 * The soak: requests flow for a while (DSPEX_SOAK_SECONDS, default 600) through `dspex processors`
 * processes and Python Kafka consumers on a broker of its own — a three-node cluster with DSPEX_SOAK_CLUSTER=1
 * — while processes are killed with -9 at random (seeded) points and the broker is restarted (at least one
 * outage of DSPEX_SOAK_OUTAGE_MS, default 120 s). It prints what it did and what came of it: requests, kills,
 * restarts, lost, duplicated, the longest lag, RSS over time, and whether the projections followed live
 * equal a rebuild. It fails when anything was lost or doubled, or the two differ.
 *
 *   npm run bench -- soak                       # 10 minutes on one broker
 *   DSPEX_SOAK_CLUSTER=1 npm run bench -- soak  # on three nodes, a node killed -9 instead of restarted
 */
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { findPython } from "../processors/workers/python.ts";
import { dspy, program, v } from "../programs/index.ts";
import {
  executionsProjection,
  type Projection,
  projectionRunner,
  stateHash,
  variablesProjection,
} from "../projections/index.ts";
import { untilAvailable } from "../streams/availability.ts";
import { createClient } from "../streams/client.ts";
import { groupLag } from "../streams/lag.ts";
import { type EventLog, isTransientError } from "../streams/log.ts";
import { openLog } from "../streams/open.ts";
import { readEvents } from "../streams/store.ts";
import { allTopics, requestPath, Topics } from "../streams/topics.ts";
import { type DspexChild, dspex, stopChild } from "../tests/support/cli.ts";
import { type Cluster, startCluster } from "../tests/support/cluster.ts";
import { freshKafkaConfig } from "../tests/support/kafka.ts";
import { type OwnBroker, startOwnBroker } from "../tests/support/own-broker.ts";
import { spawnKafkaConsumer } from "./consumers.ts";
import { report, type Suite } from "./report.ts";

export interface SoakOptions {
  seconds: number;
  /** Requests published per second. */
  rate: number;
  /** Seconds between chaos actions (on average). */
  chaosEverySeconds: number;
  /** The long outage of the broker (one node of a cluster: killed that long). */
  outageMs: number;
  cluster: boolean;
  seed: number;
  processors: number;
  consumers: number;
}

export interface SoakResult {
  requests: number;
  processorKills: number;
  consumerKills: number;
  brokerRestarts: number;
  lost: string[];
  /** For a few lost requests, the events the log holds of each (topic: type, in order). */
  lostTraces: string[];
  duplicated: string[];
  /** dspex processes that exited without being killed (none should). */
  exitedByThemselves: string[];
  maxLag: number;
  rssMb: { at: number; mb: number }[];
  replayEqual: boolean;
  seconds: number;
}

const soakQa = program("soak-qa")
  .input("question: str")
  .variable("model", v.model(["dspex/test?latency_ms=200"]))
  .stage("answer", dspy.predict("question -> answer"))
  .output("answer", "answer.answer");

/** Mulberry32: the soak's choices are reproducible from its seed. */
const randomOf = (seed: number) => {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const rssMbOf = (pids: number[]): number => {
  if (pids.length === 0) return 0;
  try {
    const out = execFileSync("ps", ["-o", "rss=", "-p", pids.join(",")], { encoding: "utf8" });
    return Math.round(out.split("\n").reduce((sum, line) => sum + (Number(line.trim()) || 0), 0) / 1024);
  } catch {
    return 0;
  }
};

const projections = [variablesProjection, executionsProjection] as Projection<unknown>[];

/** `call`, or `fallback` when it takes longer than `ms` (a probe must not stop the soak's clock). */
const within = <T>(ms: number, call: Promise<T>, fallback: T): Promise<T> =>
  Promise.race([call.catch(() => fallback), sleep(ms).then(() => fallback)]);

/** Where each of `requestIds` got to: every event the log holds of it, topic by topic, in log order. */
const traces = async (log: EventLog, requestIds: readonly string[]): Promise<string[]> => {
  const wanted = new Set(requestIds);
  const requestOf = new Map<string, string>();
  const seen = new Map<string, string[]>(requestIds.map((id) => [id, []]));
  const pipelineCommitted = new Map<string, Map<number, number>>();
  for (const topic of requestPath) {
    pipelineCommitted.set(topic, await log.committed("dspex-pipeline", topic).catch(() => new Map()));
    for (const read of await readEvents(log, topic)) {
      if (!("event" in read)) continue;
      const data = read.event.data as { requestId?: string; executionId?: string; attempt?: number };
      if (data.requestId && data.executionId) requestOf.set(data.executionId, data.requestId);
      const requestId = data.requestId ?? (data.executionId ? requestOf.get(data.executionId) : undefined);
      if (requestId && wanted.has(requestId)) {
        // What a rebuild needs to tell apart: the attempt, the producer's clock, the id (copies share it).
        const attempt = data.attempt === undefined ? "" : ` #${data.attempt}`;
        const at = new Date(read.record.timestamp).toISOString().slice(11, 23);
        seen
          .get(requestId)!
          .push(
            `${topic}[${read.record.partition}]@${read.record.offset}: ${read.event.type}${attempt} at ${at} id ${read.event.id.slice(0, 8)}`,
          );
      }
    }
  }
  const committed = [...pipelineCommitted]
    .map(([topic, positions]) => `${topic} ${JSON.stringify(Object.fromEntries(positions))}`)
    .join("; ");
  return [
    `pipeline group committed: ${committed}`,
    ...requestIds.map((id) => `${id}: ${seen.get(id)!.join(", ") || "no event at all"}`),
  ];
};
const hashOf = (runner: ReturnType<typeof projectionRunner>) =>
  stateHash(Object.fromEntries(projections.map((p) => [p.name, runner.state(p.name)])));

/** Runs the soak and says what happens on `say` (one line per event worth a line). */
export const runSoak = async (options: SoakOptions, say: (line: string) => void): Promise<SoakResult> => {
  const python = findPython().python;
  if (!python) throw new Error(`the soak needs the Python environment: ${findPython().reason}`);
  const random = randomOf(options.seed);
  const began = Date.now();
  let cluster: Cluster | undefined;
  let broker: OwnBroker | undefined;
  if (options.cluster) cluster = await startCluster();
  else broker = await startOwnBroker();
  const brokers = (cluster?.brokers ?? broker?.brokers)!;
  const config = freshKafkaConfig({ brokers });
  const namespace = config.namespace!;
  const env = {
    ...process.env,
    DSPEX_BACKEND: "kafka",
    DSPEX_KAFKA_BROKERS: brokers,
    DSPEX_KAFKA_NAMESPACE: namespace,
    // A process that stops by itself prints its stack: the soak shows its last lines.
    DSPEX_DEBUG: "1",
  };
  let log: EventLog | undefined;
  const processors: DspexChild[] = [];
  const consumers: ChildProcess[] = [];
  const result: SoakResult = {
    requests: 0,
    processorKills: 0,
    consumerKills: 0,
    brokerRestarts: 0,
    lost: [],
    lostTraces: [],
    duplicated: [],
    exitedByThemselves: [],
    maxLag: 0,
    rssMb: [],
    replayEqual: false,
    seconds: 0,
  };
  let workerCount = 0;
  const killedChildren: ChildProcess[] = [];
  /** Set when the soak stops its processes: their exits are not failures. */
  let ending = false;
  const addProcessor = () => {
    const child = dspex(["processors", "--status-every", "10000"], env);
    processors.push(child);
    child.child.once("exit", (code, signal) => {
      if (ending || killedChildren.includes(child.child)) return;
      const last = [...child.lines, ...child.errors].slice(-20).join("\n  ");
      say(
        `processors (pid ${child.child.pid}) exited by itself (${code ?? signal}); its last lines:\n  ${last}`,
      );
    });
    return child;
  };
  const addConsumer = () => {
    const child = spawnKafkaConsumer(python, {
      brokers,
      namespace,
      worker: `soak-${workerCount++}`,
      logLevel: "ERROR",
    });
    consumers.push(child);
    return child;
  };
  const alive = <T extends { exitCode: number | null; signalCode: NodeJS.Signals | null }>(c: T) =>
    c.exitCode === null && c.signalCode === null;
  try {
    log = await openLog(config);
    await log.ensureTopics(allTopics.map((topic) => ({ topic })));
    const client = createClient(log);
    await client.register(soakQa.build());
    for (let i = 0; i < options.processors; i++) await addProcessor().waitFor(/processors ready/, 120_000);
    for (let i = 0; i < options.consumers; i++) addConsumer();
    say(
      `soak on ${cluster ? "a three-node cluster" : "one broker"} at ${brokers}: ${options.processors} processors, ${options.consumers} consumers, ${options.rate} requests/s for ${options.seconds} s`,
    );

    const live = projectionRunner({ name: "soak-live", log, projections });
    let running = true;
    const following = (async () => {
      while (running) {
        await live.catchUp().catch(() => undefined);
        await sleep(1_000);
      }
    })();

    const requestIds: string[] = [];
    const publishing = (async () => {
      while (running) {
        const requestId = `soak-${requestIds.length}`;
        requestIds.push(requestId);
        // A publish during an outage fails; publishing the same request id again is safe (it runs once).
        await untilAvailable(
          () => client.publish({ requestId, programId: "soak-qa", inputs: { question: requestId } }),
          isTransientError,
        );
        await sleep(1_000 / options.rate);
      }
    })();

    const monitoring = (async () => {
      while (running) {
        const lag = await within(15_000, groupLag(log!, "dspex-pipeline", [Topics.requests]), []);
        result.maxLag = Math.max(
          result.maxLag,
          lag.reduce((sum, l) => sum + l.lag, 0),
        );
        const pids = [...processors.map((p) => p.child), ...consumers].filter(alive).map((c) => c.pid!);
        result.rssMb.push({ at: Math.round((Date.now() - began) / 1000), mb: rssMbOf(pids) });
        await sleep(10_000);
      }
    })();

    /** One random action: kill -9 a processor or a consumer (started again soon), or take the broker down. */
    let outageDone = false;
    const chaos = async () => {
      const roll = random();
      if (roll < 0.4) {
        const victim = processors.filter((p) => alive(p.child))[Math.floor(random() * options.processors)];
        if (!victim) return;
        victim.child.kill("SIGKILL");
        killedChildren.push(victim.child);
        result.processorKills++;
        await sleep(500 + random() * 2_000);
        addProcessor();
      } else if (roll < 0.85) {
        const victim = consumers.filter(alive)[Math.floor(random() * options.consumers)];
        if (!victim) return;
        victim.kill("SIGKILL");
        killedChildren.push(victim);
        result.consumerKills++;
        await sleep(500 + random() * 2_000);
        addConsumer();
      } else {
        const downMs = outageDone ? 5_000 + random() * 20_000 : options.outageMs;
        outageDone = true;
        say(`broker down for ${(downMs / 1000).toFixed(0)} s`);
        if (cluster) {
          const node = cluster.nodes[Math.floor(random() * cluster.nodes.length)]!.id;
          await cluster.kill(node);
          await sleep(downMs);
          await cluster.start(node);
        } else await broker!.restart(downMs);
        result.brokerRestarts++;
      }
    };
    const until = began + options.seconds * 1_000;
    while (Date.now() < until) {
      await sleep(options.chaosEverySeconds * 1_000 * (0.5 + random()));
      if (Date.now() >= until) break;
      await chaos();
    }
    if (!outageDone) await chaos();
    running = false;
    await Promise.all([publishing, monitoring]);
    result.requests = requestIds.length;
    say(`published ${requestIds.length} requests; waiting for every result`);
    const deadline = Date.now() + 600_000;
    for (;;) {
      const done = new Map<string, Set<string>>();
      for (const read of await readEvents(log, Topics.results).catch(() => []))
        if ("event" in read && "requestId" in read.event.data)
          done.set(
            read.event.data.requestId,
            (done.get(read.event.data.requestId) ?? new Set()).add(read.event.id),
          );
      result.lost = requestIds.filter((id) => !done.has(id));
      result.duplicated = requestIds.filter((id) => (done.get(id)?.size ?? 0) > 1);
      if (result.lost.length === 0 || Date.now() > deadline) break;
      await sleep(2_000);
    }
    if (result.lost.length > 0) result.lostTraces = await traces(log, result.lost.slice(0, 10));
    const killed = new Set<ChildProcess>(killedChildren);
    result.exitedByThemselves = [
      ...processors
        .map((p) => p.child)
        .filter((c) => !alive(c) && !killed.has(c))
        .map((c) => `processors (pid ${c.pid}): ${c.exitCode ?? c.signalCode}`),
      ...consumers
        .filter((c) => !alive(c) && !killed.has(c))
        .map((c) => `consumer (pid ${c.pid}): ${c.exitCode ?? c.signalCode}`),
    ];
    await following;
    await live.catchUp();
    const rebuilt = projectionRunner({ name: "soak-rebuilt", log, projections });
    await rebuilt.rebuild();
    result.replayEqual = hashOf(live) === hashOf(rebuilt);
    result.seconds = Math.round((Date.now() - began) / 1000);
    return result;
  } finally {
    ending = true;
    await Promise.all([...processors.map((p) => stopChild(p.child)), ...consumers.map((c) => stopChild(c))]);
    await log?.close();
    await cluster?.stop();
    await broker?.stop();
  }
};

export const soakOptionsFromEnvironment = (env: NodeJS.ProcessEnv = process.env): SoakOptions => ({
  seconds: Number(env.DSPEX_SOAK_SECONDS ?? 600),
  rate: Number(env.DSPEX_SOAK_RATE ?? 4),
  chaosEverySeconds: Number(env.DSPEX_SOAK_CHAOS_EVERY ?? 5),
  outageMs: Number(env.DSPEX_SOAK_OUTAGE_MS ?? 120_000),
  cluster: env.DSPEX_SOAK_CLUSTER === "1",
  seed: Number(env.DSPEX_SOAK_SEED ?? 1),
  processors: 2,
  consumers: 2,
});

export const soakSuite: Suite = {
  name: "soak",
  description: "requests through processors and consumers killed -9 at random, the broker down and back",
  async run() {
    const options = soakOptionsFromEnvironment();
    const result = await runSoak(options, (line) => console.log(`# ${line}`));
    report("soak", "requests", result.requests, "requests");
    report("soak", "processor_kills", result.processorKills, "kills");
    report("soak", "consumer_kills", result.consumerKills, "kills");
    report("soak", "broker_restarts", result.brokerRestarts, "restarts");
    report("soak", "lost", result.lost.length, "requests");
    report("soak", "duplicated", result.duplicated.length, "requests");
    report("soak", "max_lag", result.maxLag, "records");
    report("soak", "rss_max", Math.max(0, ...result.rssMb.map((r) => r.mb)), "MB");
    report("soak", "seconds", result.seconds, "s");
    console.log(`# RSS over time (s → MB): ${result.rssMb.map((r) => `${r.at}→${r.mb}`).join(" ")}`);
    console.log(`# live projections ${result.replayEqual ? "equal" : "DIFFER from"} the rebuild`);
    for (const trace of result.lostTraces) console.log(`# lost ${trace}`);
    for (const exit of result.exitedByThemselves) console.log(`# exited by itself: ${exit}`);
    const failed =
      result.lost.length > 0 ||
      result.duplicated.length > 0 ||
      !result.replayEqual ||
      result.exitedByThemselves.length > 0;
    if (failed)
      throw new Error(
        `the soak lost ${result.lost.length} and doubled ${result.duplicated.length} requests; replay ${result.replayEqual ? "equal" : "differs"}; ${result.exitedByThemselves.length} processes exited by themselves`,
      );
  },
};
