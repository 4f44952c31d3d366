/**
 * Scale-out mode, as the README describes it: `dspex processors` and `dspex workers` as separate processes
 * on the real Kafka broker (the pipeline in one, Python consumers in others), requests published by a
 * client. A second `dspex workers` started while requests are running joins the consumer group, takes
 * partitions and executes steps; every request gets exactly one result; `dspex run` talks to the running
 * deployment; SIGTERM stops every process cleanly. The LM is the test LM, sleeping 300 ms per call.
 */
import type { ChildProcess } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { findPython } from "../../processors/workers/python.ts";
import { dspy, program, v } from "../../programs/index.ts";
import { createClient } from "../../streams/client.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { dspex, stopChild as stop } from "../support/cli.ts";
import { freshKafkaConfig, kafkaForTests } from "../support/kafka.ts";
import { pipelineInputs, untilCaughtUp } from "../support/waits.ts";

const found = findPython();
const kafka = kafkaForTests();
const skipReason = !found.python ? found.reason : "skipReason" in kafka ? kafka.skipReason : undefined;
if (skipReason) console.warn(`skipping the scale-out test: ${skipReason}`);

const slowQa = program("scale-out-qa")
  .input("question: str")
  .variable("model", v.model(["dspex/test?latency_ms=300"]))
  .stage("answer", dspy.predict("question -> answer"))
  .output("answer", "answer.answer");

describe.skipIf(skipReason !== undefined)("scale-out on Kafka: dspex processors + dspex workers", () => {
  const children: ChildProcess[] = [];
  let log: EventLog | undefined;
  afterAll(async () => {
    await Promise.all(children.map(stop));
    await log?.close();
  }, 60_000);

  it("a consumer started while requests run takes partitions; every request gets exactly one result", async () => {
    const config = freshKafkaConfig();
    const env = {
      ...process.env,
      DSPEX_BACKEND: "kafka",
      DSPEX_KAFKA_BROKERS: (kafka as { brokers: string }).brokers,
      DSPEX_KAFKA_NAMESPACE: config.namespace,
      DSPEX_PYTHON: found.python,
    };
    const processors = dspex(["processors", "--status-every", "1000"], env);
    const first = dspex(["workers", "-n", "1", "--name", "first"], env);
    children.push(processors.child, first.child);
    await processors.waitFor(/processors ready/);
    await first.waitFor(/first-1: assigned .*dspex\.steps/);

    log = await openLog(config);
    const client = createClient(log);
    await client.register(slowQa.build());
    const requestIds: string[] = [];
    const results: Promise<unknown>[] = [];
    const request = () => {
      const requestId = `scale-${requestIds.length}`;
      requestIds.push(requestId);
      results.push(
        client.execute(
          { requestId, programId: "scale-out-qa", inputs: { question: `question ${requestId}` } },
          { timeoutMs: 120_000 },
        ),
      );
    };

    // Requests are running on the first consumer when the second starts; more keep coming until it
    // holds partitions, then one more wave that both share.
    for (let i = 0; i < 10; i++) request();
    const second = dspex(["workers", "-n", "1", "--name", "second"], env);
    children.push(second.child);
    const joined = second.waitFor(/second-1: assigned .*dspex\.steps/);
    let hasJoined = false;
    joined.then(() => (hasJoined = true)).catch(() => undefined);
    while (!hasJoined) {
      if (second.child.exitCode !== null) await joined;
      request();
      await Promise.race([joined, new Promise((r) => setTimeout(r, 700))]);
    }
    for (let i = 0; i < 12; i++) request();

    const outcomes = (await Promise.all(results)) as { type: string }[];
    expect(outcomes.map((o) => o.type)).toEqual(requestIds.map(() => "ExecutionCompleted"));
    // Redelivered steps after a rebalance must not produce a second result: everyone caught up first.
    await untilCaughtUp(log, { ...pipelineInputs, "dspex-consumers": [Topics.steps] }, 120_000);
    const perRequest = new Map<string, number>();
    for (const read of await readEvents(log, Topics.results))
      if ("event" in read && "requestId" in read.event.data)
        perRequest.set(read.event.data.requestId, (perRequest.get(read.event.data.requestId) ?? 0) + 1);
    expect(requestIds.filter((id) => perRequest.get(id) !== 1)).toEqual([]);
    const workers = new Set(
      (await readEvents(log, Topics.stepResults)).flatMap((read) =>
        "event" in read && read.event.type === "StepCompleted" ? [read.event.data.worker] : [],
      ),
    );
    expect([...workers].sort()).toEqual(["first-1", "second-1"]);

    // `dspex run` against the running deployment: it starts nothing, publishes, prints the result.
    const run = dspex(["run", "scale-out-qa", "-i", "question=one more", "--timeout", "60000"], env);
    expect(await run.exited).toBe(0);
    expect(JSON.parse(run.lines.join("\n"))).toMatchObject({ type: "ExecutionCompleted" });

    // SIGTERM: each consumer finishes its step and leaves; the processors commit and stop.
    for (const proc of [second, first, processors]) {
      expect(await stop(proc.child)).toBe(0);
      expect(proc.lines.at(-1)).toMatch(/stopped/);
    }
    expect(processors.lines.some((line) => /finished: \d+ completed/.test(line))).toBe(true);
  }, 150_000);
});
