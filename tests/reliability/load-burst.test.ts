/**
 * Load: a burst of 100,000 requests (DSPEX_LOAD_REQUESTS) onto the embedded log, in front of a pipeline
 * that runs at most 1,000 executions at a time and a slower step consumer. The log is the queue: the
 * pipeline stops taking requests while it is full and the rest wait on the log, not in memory. Memory
 * stays bounded — executions in flight never pass the limit — and every request completes exactly once,
 * none rejected: every step answered, nothing left in flight. Peak RSS is reported.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type PipelineState, startPipeline } from "../../processors/pipeline/pipeline.ts";
import type { RunningProcessor } from "../../processors/runtime/index.ts";
import { dspy, program, v } from "../../programs/index.ts";
import { createClient } from "../../streams/client.ts";
import { encodeEvent, Headers } from "../../streams/codec.ts";
import { type DspexEvent, ExecutionRequested } from "../../streams/events/index.ts";
import type { AppendRecord, EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { Topics } from "../../streams/topics.ts";
import { temporaryFolder } from "../support/backends.ts";
import { startSlowSteps } from "../support/slow-steps.ts";

const REQUESTS = Number(process.env.DSPEX_LOAD_REQUESTS ?? 100_000);
const MAX_IN_FLIGHT = 1_000;
const PUBLISH_CHUNK = 1_000;
/** The slow consumer: 200 steps per 50 ms batch, at most 4,000 steps/s — slower than the burst. */
const STEP_BATCH = 200;
const STEP_BATCH_MS = 50;
/** Growth of the process's RSS over its size before the burst that the test tolerates. */
const RSS_BUDGET_MB = 600;

const loadProgram = program("load-qa")
  .input("question: str")
  .variable("model", v.model(["dspex/test"]))
  .stage("answer", dspy.predict("question -> answer"))
  .output("answer", "answer.answer");

/** Executions in flight over the pipeline's tasks. */
const inFlight = (pipeline: RunningProcessor<PipelineState>) =>
  [...pipeline.states().values()].reduce((sum, state) => sum + state.coordinator.executions.size, 0);

const mb = (bytes: number) => Math.round(bytes / (1024 * 1024));

/**
 * The burst's requests as records, the way any producer may write them: one event is built and
 * validated, the others are copies with their own ids (the pipeline validates each when it reads it).
 */
const requestRecords = (first: number, count: number): AppendRecord[] => {
  const template = ExecutionRequested.create({
    stream: "request-template",
    key: "template",
    // The test is about the queue, not timeouts: on a loaded machine a step may wait longer than the
    // default 2 min, and a timed-out step would open the model's circuit and fail the rest.
    data: {
      requestId: "template",
      programId: "load-qa",
      inputs: { question: "q" },
      policy: { stepTimeoutMs: 600_000 },
    },
  });
  const { headers } = encodeEvent(template);
  return Array.from({ length: count }, (_, i) => {
    const requestId = `load-${first + i}`;
    const id = randomUUID();
    const event = {
      ...template,
      id,
      stream: `request-${requestId}`,
      key: requestId,
      correlationId: id,
      data: { ...template.data, requestId, inputs: { question: `q${first + i}` } },
    };
    return {
      topic: Topics.requests,
      key: requestId,
      value: JSON.stringify(event),
      headers: { ...headers, [Headers.id]: id },
    };
  });
};

/**
 * Every terminal outcome on dspex.results, counted per request id (a second one would show as 2). The
 * pipeline validated these events when it wrote them: they are read as plain JSON, by their type header.
 */
const countOutcomes = (log: EventLog) => {
  const perRequest = new Map<string, number>();
  const byKind = { completed: 0, failed: 0, saturated: 0, otherRejections: 0 };
  const consumer = log.consume(
    { group: "load-outcomes", topics: [Topics.results], maxBatch: 5_000 },
    async (batch) => {
      for (const record of batch.records) {
        const type = record.headers[Headers.type];
        if (!type?.startsWith("Execution")) continue;
        const event = JSON.parse(record.value.toString("utf8")) as DspexEvent;
        if (event.type === "ExecutionCompleted") byKind.completed++;
        else if (event.type === "ExecutionFailed") {
          byKind.failed++;
          if (byKind.failed === 1) console.warn(`[load] a failed execution: ${JSON.stringify(event.data)}`);
        } else if (event.type === "ExecutionRejected") {
          if (event.data.code === "saturated") byKind.saturated++;
          else byKind.otherRejections++;
        } else continue;
        const { requestId } = event.data as { requestId: string };
        perRequest.set(requestId, (perRequest.get(requestId) ?? 0) + 1);
      }
    },
  );
  return { perRequest, byKind, stop: () => consumer.stop() };
};

describe("load: a burst of requests against slow consumers", () => {
  const opened: EventLog[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((log) => log.close()));
  });

  it(`${REQUESTS} requests: bounded memory, one outcome each, the backlog drains`, async () => {
    const log = await openLog({ backend: "embedded", path: join(temporaryFolder("dspex-load-"), "log.db") });
    opened.push(log);
    await createClient(log).register(loadProgram.build());
    const pipeline = startPipeline(log, { intake: { maxInFlight: MAX_IN_FLIGHT } });
    const steps = startSlowSteps(log, { maxBatch: STEP_BATCH, batchMs: STEP_BATCH_MS });
    const outcomes = countOutcomes(log);
    await pipeline.ready;

    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peakRss = baseline;
    let peakInFlight = 0;
    const sample = () => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      peakInFlight = Math.max(peakInFlight, inFlight(pipeline));
    };
    const sampler = setInterval(sample, 20);
    const began = Date.now();
    try {
      for (let first = 0; first < REQUESTS; first += PUBLISH_CHUNK) {
        await log.append(requestRecords(first, Math.min(PUBLISH_CHUNK, REQUESTS - first)));
        sample();
      }
      const published = Date.now();
      const deadline = Date.now() + 240_000;
      while (outcomes.perRequest.size < REQUESTS) {
        if (Date.now() > deadline)
          throw new Error(
            `only ${outcomes.perRequest.size} of ${REQUESTS} outcomes in time: ${JSON.stringify(outcomes.byKind)}`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
      const drained = Date.now();
      sample();

      // One outcome per request, none twice.
      expect(outcomes.perRequest.size).toBe(REQUESTS);
      expect([...outcomes.perRequest.values()].filter((n) => n !== 1)).toEqual([]);
      const { byKind } = outcomes;
      expect(byKind).toEqual({ completed: REQUESTS, failed: 0, saturated: 0, otherRejections: 0 });
      // The slow consumer could not keep up: requests waited on the log, the limit held.
      expect(peakInFlight).toBe(MAX_IN_FLIGHT);
      // Drained: every admitted request's step was answered, nothing is in flight.
      expect(steps.answered()).toBe(byKind.completed);
      expect(inFlight(pipeline)).toBe(0);
      expect(mb(peakRss - baseline)).toBeLessThan(RSS_BUDGET_MB);
      console.log(
        `[load] ${REQUESTS} requests: ${byKind.completed} completed, ${byKind.saturated} rejected as saturated, none lost or doubled; published in ${((published - began) / 1000).toFixed(1)} s, drained after ${((drained - began) / 1000).toFixed(1)} s; peak in flight ${peakInFlight} (limit ${MAX_IN_FLIGHT}); RSS ${mb(baseline)} MB before, peak ${mb(peakRss)} MB (+${mb(peakRss - baseline)} MB), heap ${mb(process.memoryUsage().heapUsed)} MB after`,
      );
    } finally {
      clearInterval(sampler);
      await Promise.all([pipeline.stop(), steps.stop(), outcomes.stop()]);
    }
  }, 300_000);
});
