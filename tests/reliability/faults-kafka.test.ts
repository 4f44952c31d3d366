/**
 * Faults on the Kafka log, in a loop of runs: each run publishes a burst of requests to a pipeline
 * processor (its own process) and two Python consumers (`dspex_consumers --transport kafka`, test LM),
 * then, while they work,
 *   1. kills the processor with -9 inside a batch transaction (outputs and offsets sent, not committed)
 *      and starts another;
 *   2. kills with -9 a Python consumer that is in the middle of a step, and starts another;
 *   3. restarts the Kafka broker (stop.sh, start.sh) — a broker of this file's own, never the shared one.
 * Afterwards: every request has exactly one result, and it is a completion; every dispatched step has a
 * result; nothing the processor emits is on the log twice; and the projections folded live while all
 * this happened hash the same as the projections rebuilt from the log.
 * DSPEX_FAULT_RUNS sets the number of runs (default 2: each takes 1–3 minutes on a busy 2-core machine).
 */
import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStepTopics, spawnKafkaConsumer, stopChild, waitForGroup } from "../../bench/consumers.ts";
import { findPython } from "../../processors/workers/python.ts";
import { dspy, native, program, v } from "../../programs/index.ts";
import {
  executionsProjection,
  metricsProjection,
  type Projection,
  projectionRunner,
  sessionsProjection,
  stateHash,
  variablesProjection,
} from "../../projections/index.ts";
import { createClient } from "../../streams/client.ts";
import type { DspexEvent } from "../../streams/events/index.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { readEvents } from "../../streams/store.ts";
import { requestPath, Topics } from "../../streams/topics.ts";
import { freshKafkaConfig } from "../support/kafka.ts";
import { type OwnBroker, ownBrokerSkipReason, startOwnBroker } from "../support/own-broker.ts";
import { spawnTs } from "../support/processes.ts";
import { pipelineInputs, untilCaughtUp } from "../support/waits.ts";

const python = findPython();
const skipReason = python.reason ?? ownBrokerSkipReason();
if (skipReason) console.warn(`skipping the Kafka fault tests: ${skipReason}`);

const RUNS = Number(process.env.DSPEX_FAULT_RUNS ?? 2);
const REQUESTS = 12;
const PARTITIONS = 4;
/** Long enough that a poll of the log finds a step still running. */
const LM_LATENCY_MS = 1_500;
const processorChild = new URL("../support/processor-child.ts", import.meta.url).pathname;

const faultsProgram = program("faults-qa")
  .input("question: str")
  .variable("model", v.model([`dspex/test?latency_ms=${LM_LATENCY_MS}`]))
  .stage("faq", native.retrieve("question -> passages: list[str]", { corpus: ["a", "b"], k: 1 }))
  .stage("answer", dspy.predict("question, passages: list[str] -> answer"), { dependsOn: ["faq"] })
  .output("answer", "answer.answer");

const projections = [
  variablesProjection,
  executionsProjection,
  sessionsProjection,
  metricsProjection,
] as Projection<unknown>[];
/** Entities by key (a Map hashes with its keys sorted: the order they were first seen is not state). */
const hashOf = (runner: ReturnType<typeof projectionRunner>) =>
  stateHash(Object.fromEntries(projections.map((p) => [p.name, runner.state(p.name)])));

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Polls `probe` until it returns a value; errors (a broker restarting) are retried until the deadline. */
const until = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = message(error);
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 300));
  }
};

const eventsOf = async (log: EventLog, topic: string): Promise<DspexEvent[]> =>
  (await readEvents(log, topic)).flatMap((r) => ("event" in r ? [r.event] : []));

const terminalTypes = new Set(["ExecutionCompleted", "ExecutionFailed", "ExecutionRejected"]);
const resultsByRequest = (results: DspexEvent[]) => {
  const byRequest = new Map<string, DspexEvent[]>();
  for (const event of results)
    if (terminalTypes.has(event.type)) {
      const { requestId } = event.data as { requestId: string };
      byRequest.set(requestId, [...(byRequest.get(requestId) ?? []), event]);
    }
  return byRequest;
};

/** Steps started and not (yet) finished, with the worker running each. */
const stepsInProgress = (stepResults: DspexEvent[]) => {
  const finished = new Set(
    stepResults.flatMap((e) =>
      e.type === "StepCompleted" || e.type === "StepFailed" ? [e.data.stepId] : [],
    ),
  );
  return stepResults.flatMap((e) =>
    e.type === "StepStarted" && !finished.has(e.data.stepId) ? [e.data] : [],
  );
};

/** What the log and the processes look like, for a failure message. */
const situation = async (
  log: EventLog,
  consumers: ChildProcess[],
  processors: ReturnType<typeof spawnTs>[],
) => {
  const lines: string[] = [];
  for (const topic of requestPath) {
    const counts = new Map<string, number>();
    for (const event of await eventsOf(log, topic).catch(() => []))
      counts.set(event.type, (counts.get(event.type) ?? 0) + 1);
    lines.push(`${topic}: ${JSON.stringify(Object.fromEntries(counts))}`);
  }
  const state = (c: ChildProcess) => (c.exitCode ?? c.signalCode ?? "running").toString();
  lines.push(`consumers: ${consumers.map(state).join(", ")}`);
  lines.push(`processors: ${processors.map((p) => `${state(p.child)} [${p.lines.join(" | ")}]`).join(", ")}`);
  return lines.join("\n");
};

const duplicates = (ids: string[]) => ids.filter((id, i) => ids.indexOf(id) !== i);

interface RunFigures {
  requests: number;
  processorKills: number;
  consumerKills: number;
  brokerRestarts: number;
  restartMs: number;
  seconds: number;
  /** Processes that exited by themselves (and were replaced), e.g. "processor 1". */
  unplannedExits: string[];
}
const figures: RunFigures[] = [];

describe.skipIf(skipReason !== undefined)("faults on Kafka: kill -9 and broker restarts lose nothing", () => {
  let broker: OwnBroker;
  beforeAll(async () => {
    broker = await startOwnBroker();
  }, 120_000);
  afterAll(async () => {
    await broker?.stop();
    if (figures.length > 0) {
      const sum = (key: Exclude<keyof RunFigures, "unplannedExits">) =>
        figures.reduce((total, f) => total + f[key], 0);
      const unplanned = figures.flatMap((f) => f.unplannedExits);
      console.log(
        `[faults] ${figures.length} runs survived: ${sum("requests")} requests, ${sum("processorKills")} processor kills mid-batch, ${sum("consumerKills")} consumer kills mid-step, ${sum("brokerRestarts")} broker restarts (${figures.map((f) => `${(f.restartMs / 1000).toFixed(1)} s`).join(", ")}), ${figures.map((f) => `${f.seconds.toFixed(0)} s`).join(", ")} per run; ${unplanned.length} processes exited by themselves and were replaced (${unplanned.join(", ") || "none"}); every request one completion, nothing lost or duplicated, replay = live`,
      );
    }
  }, 60_000);

  it.each(Array.from({ length: RUNS }, (_, i) => i + 1))(
    "run %i",
    async (run) => {
      const began = Date.now();
      const config = freshKafkaConfig({ brokers: broker.brokers, defaultPartitions: PARTITIONS });
      const namespace = config.namespace!;
      await createStepTopics(broker.brokers, namespace, PARTITIONS);
      const log = await openLog(config);
      const consumers: ChildProcess[] = [];
      const processors: ReturnType<typeof spawnTs>[] = [];
      let workers = 0;
      const addConsumer = () => {
        const child = spawnKafkaConsumer(python.python!, {
          brokers: broker.brokers,
          namespace,
          worker: `fault-${run}-${workers++}`,
          sessionTimeoutMs: 6_000,
          logLevel: "ERROR",
        });
        consumers.push(child);
        return child;
      };
      const addProcessor = (options: { hangMidBatch?: boolean } = {}) => {
        const child = spawnTs(processorChild, [JSON.stringify(config), JSON.stringify(options)]);
        processors.push(child);
        return child;
      };
      // A supervisor, as a deployment has one: a process that exits by itself (not killed here) is
      // replaced and counted. Nothing may be lost either way; the figures say how often it happened.
      const planned = new Set<ChildProcess>();
      const replaced = new Set<ChildProcess>();
      const unplanned: string[] = [];
      const supervisor = setInterval(() => {
        const exited = (c: ChildProcess) =>
          (c.exitCode !== null || c.signalCode !== null) && !planned.has(c) && !replaced.has(c);
        for (const c of consumers.filter(exited)) {
          replaced.add(c);
          unplanned.push(`consumer ${c.exitCode ?? c.signalCode}`);
          addConsumer();
        }
        for (const p of processors.filter((p) => exited(p.child))) {
          replaced.add(p.child);
          unplanned.push(`processor ${p.child.exitCode ?? p.child.signalCode}`);
          addProcessor();
        }
      }, 500);
      const killPlanned = async (child: ChildProcess) => {
        planned.add(child);
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((done) => child.once("exit", done));
        child.kill("SIGKILL");
        await exited;
      };
      const live = projectionRunner({ name: "live", log, projections });
      let following = true;
      const follow = (async () => {
        while (following) {
          await live.catchUp().catch(() => undefined);
          await new Promise((r) => setTimeout(r, 500));
        }
      })();
      const figure: RunFigures = {
        requests: REQUESTS,
        processorKills: 0,
        consumerKills: 0,
        brokerRestarts: 0,
        restartMs: 0,
        seconds: 0,
        unplannedExits: unplanned,
      };
      try {
        const client = createClient(log);
        await client.register(faultsProgram.build());
        addConsumer();
        addConsumer();
        await waitForGroup(broker.brokers, `${namespace}dspex-consumers`, 2, consumers, 90_000);
        const first = addProcessor({ hangMidBatch: true });
        await first.waitFor((lines) => lines.includes("ready"), 60_000);
        const requestIds = Array.from({ length: REQUESTS }, (_, i) => `fault-${run}-${i}`);
        for (const requestId of requestIds)
          await client.publish({ requestId, programId: "faults-qa", inputs: { question: `q ${requestId}` } });

        // 1. The processor, inside a transaction that admits requests.
        await first.waitFor((lines) => lines.some((l) => l.startsWith("mid-batch")), 60_000);
        await killPlanned(first.child);
        figure.processorKills++;
        const second = addProcessor();
        await second.waitFor((lines) => lines.includes("ready"), 60_000);

        // 2. A consumer in the middle of a step: its StepStarted is on the log, its result is not.
        const victim = await until(
          "a step in progress",
          async () => stepsInProgress(await eventsOf(log, Topics.stepResults))[0],
          90_000,
        );
        const killed = consumers.find((_, i) => `fault-${run}-${i}` === victim.worker)!;
        await killPlanned(killed);
        figure.consumerKills++;
        addConsumer();

        // 3. The broker, while steps are still running.
        const done = resultsByRequest(await eventsOf(log, Topics.results)).size;
        expect(done).toBeLessThan(REQUESTS);
        const restart = await broker.restart();
        figure.brokerRestarts++;
        figure.restartMs = restart.stoppedMs + restart.startedMs;

        await until(
          `${REQUESTS} results`,
          async () =>
            resultsByRequest(await eventsOf(log, Topics.results)).size >= REQUESTS ? true : undefined,
          180_000,
        ).catch(async (error) => {
          throw new Error(`${message(error)}\n${await situation(log, consumers, processors)}`);
        });
        // Everyone caught up with everything: a late duplicate would be on the log now.
        await untilCaughtUp(log, { ...pipelineInputs, "dspex-consumers": [Topics.steps] }, 120_000);

        const results = resultsByRequest(await eventsOf(log, Topics.results));
        for (const requestId of requestIds) {
          const outcomes = results.get(requestId) ?? [];
          expect(
            outcomes.map((e) => e.type),
            requestId,
          ).toEqual(["ExecutionCompleted"]);
        }
        expect(results.size).toBe(REQUESTS);

        // The step the victim was running was finished by another consumer.
        const stepResults = await eventsOf(log, Topics.stepResults);
        const completedBy = stepResults.flatMap((e) =>
          e.type === "StepCompleted" && e.data.stepId === victim.stepId ? [e.data.worker] : [],
        );
        expect(completedBy.length).toBeGreaterThan(0);
        expect(completedBy).not.toContain(victim.worker);

        // Every dispatched step has a result; nothing the processor wrote (in transactions) is doubled.
        const executions = await eventsOf(log, Topics.executions);
        const steps = await eventsOf(log, Topics.steps);
        const answered = new Set(
          stepResults.flatMap((e) => (e.type === "StepCompleted" ? [e.data.stepId] : [])),
        );
        for (const step of steps)
          if (step.type === "StepDispatched") expect(answered).toContain(step.data.stepId);
        expect(executions.filter((e) => e.type === "ExecutionStarted")).toHaveLength(REQUESTS);
        const allResults = await eventsOf(log, Topics.results);
        expect(duplicates([...executions, ...steps, ...allResults].map((e) => e.id))).toEqual([]);

        // Live (folded as the log grew, through the faults) = rebuilt from scratch.
        following = false;
        await follow;
        await live.catchUp();
        const rebuilt = projectionRunner({ name: "rebuilt", log, projections });
        await rebuilt.rebuild();
        expect(rebuilt.eventsApplied).toBe(live.eventsApplied);
        const differences = projections.flatMap((p) => {
          const [a, b] = [live.state(p.name), rebuilt.state(p.name)];
          if (stateHash(a) === stateHash(b)) return [];
          const keys = [...new Set([...a.keys(), ...b.keys()])].filter(
            (k) => stateHash(a.get(k) ?? null) !== stateHash(b.get(k) ?? null),
          );
          return [
            `${p.name}: ${keys.length} entities differ; first ${keys[0]}: live ${JSON.stringify(a.get(keys[0]!))} rebuilt ${JSON.stringify(b.get(keys[0]!))}`,
          ];
        });
        expect(differences).toEqual([]);
        expect(hashOf(rebuilt)).toBe(hashOf(live));
        figure.seconds = (Date.now() - began) / 1000;
        figures.push(figure);
      } finally {
        clearInterval(supervisor);
        following = false;
        await follow;
        await Promise.all([
          ...consumers.map((child) => stopChild(child)),
          ...processors.map((p) => stopChild(p.child)),
        ]);
        await log.close();
      }
    },
    300_000,
  );
});
