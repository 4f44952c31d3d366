/**
 * Steps/s through 1, 2 and 4 Python consumers with the test LM sleeping 200 ms per call
 * (`dspex/test?latency_ms=200`), (a) on the stdio pool (embedded log + step runner) and (b) on Kafka
 * (k `dspex_consumers --transport kafka` processes in one group). StepDispatched commands are published
 * straight onto dspex.steps (the pipeline is not in the way), keyed so every partition gets the same
 * share; the clock runs from the first publish to the last StepCompleted. Before each timed round a
 * warm-up (one step per partition, no latency) proves every consumer is up and holds partitions.
 * Scale-out efficiency = throughput_k / (k × throughput_1); the goal is ≥ 0.9 (4 consumers ≥ 3.6× one).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { filter, firstValueFrom, map, scan, timeout } from "rxjs";
import { startWorkerPool } from "../processors/workers/pool.ts";
import { findPython } from "../processors/workers/python.ts";
import { startStepRunner } from "../processors/workers/step-runner.ts";
import { decodeRecord } from "../streams/codec.ts";
import type { Envelope } from "../streams/envelope.ts";
import { StepDispatched } from "../streams/events/index.ts";
import type { EventLog } from "../streams/log.ts";
import { openLog } from "../streams/open.ts";
import { partitionFor } from "../streams/partition.ts";
import { appendEvents } from "../streams/store.ts";
import { Topics } from "../streams/topics.ts";
import { trackChild } from "../tests/support/cleanup.ts";
import { brokerProblem, deleteTopicsWithPrefix, withKafkaAdmin } from "../tests/support/kafka-admin.ts";
import { report, type Suite } from "./report.ts";

const root = new URL("..", import.meta.url).pathname;
const COUNTS = [1, 2, 4] as const;
const STEPS_PER_CONSUMER = 40;
const LATENCY_MS = 200;
/** Partitions of dspex.steps on Kafka: a multiple of every consumer count, so each gets an equal share. */
const PARTITIONS = 8;
const ROUND_TIMEOUT_MS = 120_000;

/** `count` keys, spread evenly over `partitions` by the same murmur2 the logs use. */
export const balancedKeys = (count: number, partitions: number, prefix: string): string[] => {
  const buckets: string[][] = Array.from({ length: partitions }, () => []);
  const perPartition = Math.ceil(count / partitions);
  for (let c = 0; buckets.some((b) => b.length < perPartition); c++) {
    const key = `${prefix}-${c}`;
    const bucket = buckets[partitionFor(key, partitions)]!;
    if (bucket.length < perPartition) bucket.push(key);
  }
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) keys.push(buckets[i % partitions]![Math.floor(i / partitions)]!);
  return keys;
};

export const benchStep = (key: string, model: string): Envelope => {
  const executionId = randomUUID();
  return StepDispatched.create({
    stream: `execution-${executionId}`,
    key,
    data: {
      stepId: randomUUID(),
      executionId,
      stageId: "answer",
      attempt: 0,
      programId: "bench-consumers",
      module: "Predict",
      signature: {
        instructions: "Answer the question.",
        inputs: [{ name: "question", type: "str", optional: false }],
        outputs: [{ name: "answer", type: "str", optional: false }],
      },
      inputs: { question: `question for ${key}` },
      demos: [],
      lm: { model, temperature: 0, maxTokens: 64 },
      tools: [],
      maxIters: 5,
      variableVersions: {},
      sessionKey: key,
      timeoutMs: 60_000,
    },
  });
};

/** Publishes the steps and resolves when each has a StepCompleted: seconds taken and the workers seen. */
const runRound = async (log: EventLog, steps: Envelope[]) => {
  const wanted = new Set(steps.map((s) => (s.data as { stepId: string }).stepId));
  const done = firstValueFrom(
    log.tail([Topics.stepResults], { from: "beginning" }).pipe(
      map((record) => decodeRecord(record)),
      filter((d) => d.ok),
      map((d) => (d as { ok: true; event: Envelope }).event),
      filter((e) => e.type === "StepCompleted" || e.type === "StepFailed"),
      scan(
        (acc, e) => {
          const data = e.data as { stepId: string; worker: string };
          if (!wanted.has(data.stepId) || acc.seen.has(data.stepId)) return acc;
          if (e.type === "StepFailed") acc.failed.push(JSON.stringify(e.data));
          acc.seen.add(data.stepId);
          acc.workers.add(data.worker);
          return acc;
        },
        { seen: new Set<string>(), workers: new Set<string>(), failed: [] as string[] },
      ),
      filter((acc) => acc.seen.size === wanted.size),
      timeout({ first: ROUND_TIMEOUT_MS }),
    ),
  );
  done.catch(() => undefined);
  const start = process.hrtime.bigint();
  await appendEvents(log, steps);
  const acc = await done;
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  if (acc.failed.length > 0) throw new Error(`bench steps failed: ${acc.failed.slice(0, 2).join("; ")}`);
  return { seconds: elapsed, workers: acc.workers };
};

/** Warm-up (every consumer must take part), then the timed round; returns steps/s. */
const measure = async (
  log: EventLog,
  consumers: number,
  label: string,
  everyConsumerWarm: boolean,
): Promise<number> => {
  const warmKeys = balancedKeys(PARTITIONS * 2, PARTITIONS, `warm-${label}-${consumers}`);
  const deadline = Date.now() + ROUND_TIMEOUT_MS;
  for (;;) {
    const warm = await runRound(
      log,
      warmKeys.map((key) => benchStep(key, "dspex/test")),
    );
    if (!everyConsumerWarm || warm.workers.size >= consumers) break;
    if (Date.now() > deadline)
      throw new Error(`${label}: only ${warm.workers.size} of ${consumers} consumers took steps`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
  const count = STEPS_PER_CONSUMER * consumers;
  const keys = balancedKeys(count, PARTITIONS, `bench-${label}-${consumers}`);
  const round = await runRound(
    log,
    keys.map((key) => benchStep(key, `dspex/test?latency_ms=${LATENCY_MS}`)),
  );
  return count / round.seconds;
};

const summarize = (label: string, rates: Map<number, number>) => {
  const one = rates.get(1);
  for (const [k, rate] of rates) {
    report(
      "consumers",
      `${label}.steps_per_s (${k} consumer${k > 1 ? "s" : ""}, ${LATENCY_MS} ms LM)`,
      rate,
      "steps/s",
    );
    if (one && k > 1) {
      report("consumers", `${label}.speedup (${k} vs 1)`, rate / one, "x");
      report("consumers", `${label}.scale_out_efficiency (${k})`, rate / (k * one), "ratio");
    }
  }
  const four = rates.get(4);
  if (one && four)
    console.log(
      `# consumers.${label}: 4 consumers = ${(four / one).toFixed(2)}× one (goal ≥ 3.6×): ${four / one >= 3.6 ? "met" : "NOT met"}`,
    );
};

const stdioRates = async (python: string) => {
  const rates = new Map<number, number>();
  for (const k of COUNTS) {
    const folder = mkdtempSync(join(tmpdir(), "dspex-bench-consumers-"));
    const log = await openLog({ backend: "embedded", path: join(folder, "log.db") });
    const pool = startWorkerPool({ python, workers: k, queueLimit: 10_000 });
    const runner = startStepRunner(log, pool, { maxInFlight: k * 2 });
    try {
      await pool.ready();
      rates.set(k, await measure(log, k, "stdio", false));
    } finally {
      await runner.stop();
      await pool.close();
      await log.close();
      rmSync(folder, { recursive: true, force: true });
    }
  }
  return rates;
};

/**
 * Runs the real CLI entry (`dspex_consumers.__main__.main`, topics and group under `--namespace`) with a
 * short session timeout: the CLI has no `--session-timeout-ms` flag yet, so the consumer config's
 * default is overridden before main() runs.
 */
export const kafkaConsumerLauncher = `
import os, sys
from dspex_consumers.transports import kafka
from dspex_consumers import __main__ as cli
session_ms = int(os.environ.get("DSPEX_SESSION_TIMEOUT_MS", "45000"))
base = kafka.consumer_config
kafka.consumer_config = lambda o: {**base(o), "session.timeout.ms": session_ms, "heartbeat.interval.ms": max(100, min(3000, session_ms // 6))}
sys.exit(cli.main(sys.argv[1:]))
`;

export const spawnKafkaConsumer = (
  python: string,
  options: {
    brokers: string;
    namespace: string;
    worker: string;
    sessionTimeoutMs?: number;
    logLevel?: string;
  },
): ChildProcess =>
  trackChild(
    spawn(
      python,
      [
        "-c",
        kafkaConsumerLauncher,
        "--transport",
        "kafka",
        "--brokers",
        options.brokers,
        "--namespace",
        options.namespace,
        "--group",
        "dspex-consumers",
        "--worker",
        options.worker,
        "--max-step-ms",
        "60000",
        "--log-level",
        options.logLevel ?? "WARNING",
      ],
      {
        cwd: root,
        stdio: ["ignore", "ignore", "inherit"],
        env: {
          ...process.env,
          DSPEX_SESSION_TIMEOUT_MS: String(options.sessionTimeoutMs ?? 6_000),
        },
      },
    ),
  );

export const stopChild = async (
  child: ChildProcess,
  signal: NodeJS.Signals = "SIGTERM",
  graceMs = 10_000,
) => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once("exit", done));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
};

/** Creates the namespace's step topics with `partitions` partitions (before any consumer subscribes). */
export const createStepTopics = (brokers: string, namespace: string, partitions: number) =>
  withKafkaAdmin(brokers, async (admin) => {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [Topics.steps, Topics.stepResults, Topics.dlq].map((t) => ({
        topic: `${namespace}${t}`,
        numPartitions: partitions,
        configEntries: [{ name: "retention.ms", value: "-1" }],
      })),
    });
  });

export const deleteNamespaceTopics = (brokers: string, namespace: string) =>
  deleteTopicsWithPrefix(brokers, namespace).catch((error) =>
    console.warn(`bench: could not delete the topics of ${namespace}: ${(error as Error).message}`),
  );

/**
 * Waits until the group is Stable with `members` members: consumers joining one by one rebalance the
 * group, and a commit that races a rebalance fails with ILLEGAL_GENERATION (which the consumer does not
 * survive yet), so no step is published before they are all in.
 */
export const waitForGroup = async (
  brokers: string,
  group: string,
  members: number,
  children: ChildProcess[] = [],
  timeoutMs = 120_000,
) =>
  withKafkaAdmin(brokers, async (admin) => {
    const deadline = Date.now() + timeoutMs;
    let last = "not described";
    for (;;) {
      const dead = children.find((c) => c.exitCode !== null || c.signalCode !== null);
      if (dead) throw new Error(`a consumer of ${group} exited (${dead.exitCode ?? dead.signalCode})`);
      const [described] = (await admin.describeGroups([group])).groups;
      last = `${described?.state} with ${described?.members.length ?? 0} members`;
      if (described?.state === "Stable" && described.members.length === members) return;
      if (Date.now() > deadline) throw new Error(`${group}: not ${members} stable members in time (${last})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  });

const kafkaRates = async (python: string, brokers: string) => {
  const rates = new Map<number, number>();
  for (const k of COUNTS) {
    const namespace = `dspex-bench-consumers-${randomUUID().slice(0, 8)}-${k}.`;
    await createStepTopics(brokers, namespace, PARTITIONS);
    const log = await openLog({ backend: "kafka", brokers, namespace, defaultPartitions: PARTITIONS });
    const children = Array.from({ length: k }, (_, i) =>
      spawnKafkaConsumer(python, { brokers, namespace, worker: `bench-kafka-${k}-${i}` }),
    );
    try {
      await waitForGroup(brokers, `${namespace}dspex-consumers`, k, children);
      rates.set(k, await measure(log, k, "kafka", true));
    } finally {
      await Promise.all(children.map((child) => stopChild(child)));
      await log.close();
      await deleteNamespaceTopics(brokers, namespace);
    }
  }
  return rates;
};

export const consumersSuite: Suite = {
  name: "consumers",
  description: `steps/s through 1, 2 and 4 Python consumers (test LM, ${LATENCY_MS} ms per call), stdio pool and Kafka`,
  async run() {
    const found = findPython();
    if (!found.python) {
      console.log(`# consumers skipped: ${found.reason}`);
      return;
    }
    summarize("stdio", await stdioRates(found.python));
    const brokers = process.env.DSPEX_KAFKA_BROKERS ?? "127.0.0.1:19092";
    const problem = await brokerProblem(brokers);
    if (problem) {
      console.log(`# consumers.kafka skipped: no broker reachable at ${brokers} (${problem})`);
      return;
    }
    summarize("kafka", await kafkaRates(found.python, brokers));
  },
};
