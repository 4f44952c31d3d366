/**
 * TypeScript → Kafka → Python → Kafka → TypeScript: the pipeline on the Kafka log, its DSPy steps run by
 * real `dspex_consumers --transport kafka` child processes (test LM); and a consumer killed with -9
 * mid-step: the step completes on the other one and exactly one ExecutionCompleted reaches dspex.results.
 * Each test has its own namespace (topics, groups). The consumers run the CLI's main() with the topics
 * under that namespace and a 6 s session timeout (see bench/consumers.ts: the CLI has no flags for them).
 */
import type { ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { createStepTopics, spawnKafkaConsumer, stopChild, waitForGroup } from "../../bench/consumers.ts";
import { startPipeline } from "../../processors/pipeline/pipeline.ts";
import { findPython } from "../../processors/workers/python.ts";
import { dspy, program, v } from "../../programs/index.ts";
import { createClient } from "../../streams/client.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { freshKafkaConfig, kafkaForTests } from "../support/kafka.ts";
import { expectTriageCompleted, mixedTriage, triageMessages } from "../support/programs.ts";
import { pipelineInputs, untilCaughtUp } from "../support/waits.ts";

const found = findPython();
const kafka = kafkaForTests();
const skipReason = !found.python ? found.reason : "skipReason" in kafka ? kafka.skipReason : undefined;
if (skipReason) console.warn(`skipping the Python Kafka consumer tests: ${skipReason}`);

const PARTITIONS = 4;

const triage = mixedTriage("kafka-py-triage");

const slow = program("kafka-py-slow")
  .input("question: str")
  .variable("model", v.model(["dspex/test?latency_ms=4000"]))
  .stage("answer", dspy.predict("question -> answer"))
  .output("answer", "answer.answer");

interface Setup {
  log: EventLog;
  children: ChildProcess[];
  stop: () => Promise<void>;
}

const started: Setup[] = [];

/** A Kafka log under a fresh namespace, its pipeline, and `consumers` Python consumers in one group. */
const setup = async (consumers: number): Promise<Setup> => {
  const config = freshKafkaConfig({ defaultPartitions: PARTITIONS });
  const brokers = (kafka as { brokers: string }).brokers;
  const namespace = config.namespace!;
  await createStepTopics(brokers, namespace, PARTITIONS);
  const log = await openLog(config);
  const children = Array.from({ length: consumers }, (_, i) =>
    spawnKafkaConsumer(found.python!, {
      brokers,
      namespace,
      worker: `kafka-py-${i}`,
      sessionTimeoutMs: 6_000,
      logLevel: "INFO",
    }),
  );
  const pipeline = startPipeline(log);
  const setupDone: Setup = {
    log,
    children,
    stop: async () => {
      await Promise.all(children.map((child) => stopChild(child)));
      await pipeline.stop();
      await log.close();
    },
  };
  started.push(setupDone);
  await pipeline.ready;
  await waitForGroup(brokers, `${namespace}dspex-consumers`, consumers, children, 120_000);
  return setupDone;
};

afterEach(async () => {
  for (const s of started.splice(0)) await s.stop();
}, 60_000);

const completions = async (log: EventLog, requestId?: string) =>
  (await readEvents(log, Topics.results)).filter(
    (r) =>
      "event" in r &&
      r.event.type === "ExecutionCompleted" &&
      (requestId === undefined || r.event.data.requestId === requestId),
  );

describe.skipIf(skipReason !== undefined)("Python consumers on the Kafka log", () => {
  it("runs a 3-stage native + DSPy pipeline TypeScript → Kafka → Python → Kafka → TypeScript", async () => {
    const { log } = await setup(2);
    const client = createClient(log);
    await client.register(triage.build());
    const results = await Promise.all(
      triageMessages.map((message, i) =>
        client.execute(
          { requestId: `kpy-${i}`, programId: "kafka-py-triage", inputs: { message } },
          { timeoutMs: 120_000 },
        ),
      ),
    );
    expectTriageCompleted(results);
    expect(await completions(log)).toHaveLength(3);
    const workers = (await readEvents(log, Topics.stepResults)).flatMap((r) =>
      "event" in r && r.event.type === "StepCompleted" ? [r.event.data.worker] : [],
    );
    expect(workers.length).toBeGreaterThanOrEqual(6);
    for (const worker of workers) expect(worker).toMatch(/^kafka-py-\d$/);
  }, 240_000);

  it("a consumer killed with -9 mid-step: the step completes on the other, one ExecutionCompleted", async () => {
    const { log, children } = await setup(2);
    const client = createClient(log);
    await client.register(slow.build());
    const requestId = "kpy-kill";
    const result = client.execute(
      { requestId, programId: "kafka-py-slow", inputs: { question: "still there?" } },
      { timeoutMs: 120_000 },
    );
    result.catch(() => undefined);

    // The worker that started the step, found on dspex.step-results (bounded).
    const deadline = Date.now() + 60_000;
    let victim: string | undefined;
    while (!victim) {
      if (Date.now() > deadline) throw new Error("no StepStarted within 60 s");
      const startedBy = (await readEvents(log, Topics.stepResults)).flatMap((r) =>
        "event" in r && r.event.type === "StepStarted" ? [r.event.data.worker] : [],
      );
      victim = startedBy[0];
      if (!victim) await new Promise((r) => setTimeout(r, 200));
    }
    const index = Number(victim.slice("kafka-py-".length));
    const killed = children[index]!;
    const exited = new Promise((done) => killed.once("exit", done));
    killed.kill("SIGKILL");
    await exited;

    const outcome = await result;
    expect(outcome.type).toBe("ExecutionCompleted");
    const completedBy = (await readEvents(log, Topics.stepResults)).flatMap((r) =>
      "event" in r && r.event.type === "StepCompleted" ? [r.event.data.worker] : [],
    );
    expect(completedBy.length).toBeGreaterThanOrEqual(1);
    for (const worker of completedBy) expect(worker).not.toBe(victim);
    // Every step and result handled by everyone: a late duplicate would be on the log now.
    await untilCaughtUp(log, { ...pipelineInputs, "dspex-consumers": [Topics.steps] }, 120_000);
    expect(await completions(log, requestId)).toHaveLength(1);
  }, 240_000);
});
