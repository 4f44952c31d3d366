/**
 * A broker outage of two minutes (DSPEX_OUTAGE_MS) while requests run: `dspex processors` and `dspex
 * workers` (a Python Kafka consumer) keep running through it — no process exits, no consumer is restarted
 * by its supervisor — each says once that Kafka went away and once that it is back, and every request
 * completes exactly once. The broker is one of the test's own (tests/support/own-broker.ts).
 */
import { afterAll, describe, expect, it } from "vitest";
import { findPython } from "../../processors/workers/python.ts";
import { dspy, program, v } from "../../programs/index.ts";
import { createClient } from "../../streams/client.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { type DspexChild, dspex, stopChild } from "../support/cli.ts";
import { freshKafkaConfig } from "../support/kafka.ts";
import { type OwnBroker, ownBrokerSkipReason, startOwnBroker } from "../support/own-broker.ts";

const OUTAGE_MS = Number(process.env.DSPEX_OUTAGE_MS ?? 120_000);
const found = findPython();
const skipReason = ownBrokerSkipReason() ?? (found.python ? undefined : found.reason);
if (skipReason) console.warn(`skipping the broker outage test: ${skipReason}`);

const slowQa = program("outage-qa")
  .input("question: str")
  .variable("model", v.model(["dspex/test?latency_ms=1500"]))
  .stage("answer", dspy.predict("question -> answer"))
  .output("answer", "answer.answer");

const resultsOf = async (log: EventLog) => {
  const perRequest = new Map<string, Set<string>>();
  for (const read of await readEvents(log, Topics.results))
    if ("event" in read && "requestId" in read.event.data) {
      const ids = perRequest.get(read.event.data.requestId) ?? new Set<string>();
      perRequest.set(read.event.data.requestId, ids.add(`${read.event.type}/${read.event.id}`));
    }
  return perRequest;
};

const printed = (child: DspexChild) => [...child.lines, ...child.errors].join("\n");

const until = async (
  what: string,
  check: () => Promise<boolean>,
  children: DspexChild[],
  timeoutMs = 180_000,
) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}; the processes printed:\n${children.map(printed).join("\n---\n")}`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
};

describe.skipIf(skipReason !== undefined)("a broker outage of minutes (Kafka)", () => {
  const children: DspexChild[] = [];
  let broker: OwnBroker | undefined;
  let log: EventLog | undefined;
  afterAll(async () => {
    await Promise.all(children.map((c) => stopChild(c.child)));
    await log?.close();
    await broker?.stop();
  }, 120_000);

  it(`no process exits, each says once it lost Kafka and once it is back, every request completes once (${OUTAGE_MS / 1000} s down)`, async () => {
    broker = await startOwnBroker();
    const config = freshKafkaConfig({ brokers: broker.brokers });
    const env = {
      ...process.env,
      DSPEX_BACKEND: "kafka",
      DSPEX_KAFKA_BROKERS: broker.brokers,
      DSPEX_KAFKA_NAMESPACE: config.namespace,
      DSPEX_PYTHON: found.python,
    };
    log = await openLog(config);
    const client = createClient(log);
    await client.register(slowQa.build());
    const processors = dspex(["processors", "--status-every", "2000"], env);
    const workers = dspex(["workers", "-n", "1", "--name", "outage"], env);
    children.push(processors, workers);
    await processors.waitFor(/processors ready/);
    await workers.waitFor(/outage-1: assigned .*dspex\.steps/, 120_000);

    const requestIds = Array.from({ length: 8 }, (_, i) => `outage-${i}`);
    for (const requestId of requestIds.slice(0, 6))
      await client.publish({ requestId, programId: "outage-qa", inputs: { question: requestId } });
    await until("the first result", async () => (await resultsOf(log!)).size > 0, children);

    const { stoppedMs, startedMs } = await broker.restart(OUTAGE_MS);
    for (const requestId of requestIds.slice(6))
      await client.publish({ requestId, programId: "outage-qa", inputs: { question: requestId } });
    await until(
      "every request's result",
      async () => {
        const results = await resultsOf(log!);
        return requestIds.every((id) => results.has(id));
      },
      children,
    );

    const results = await resultsOf(log);
    for (const requestId of requestIds) expect([...results.get(requestId)!], requestId).toHaveLength(1);
    expect([...results.values()].map((r) => [...r][0]!.split("/")[0])).toEqual(
      requestIds.map(() => "ExecutionCompleted"),
    );
    expect(processors.child.exitCode).toBeNull();
    expect(workers.child.exitCode).toBeNull();
    const processorLines = printed(processors);
    expect(processorLines.match(/cannot be reached/g)?.length ?? 0, processorLines).toBe(1);
    expect(processorLines.match(/is back after/g)?.length ?? 0, processorLines).toBe(1);
    expect(printed(workers)).not.toMatch(/exited .*restarting/);
    console.log(
      `[outage] broker down ${((OUTAGE_MS + stoppedMs) / 1000).toFixed(0)} s (stopped in ${stoppedMs} ms, back in ${startedMs} ms): ` +
        `${requestIds.length} requests, each completed once; no process exited`,
    );
  }, 600_000);
});
