/**
 * OpenTelemetry export end to end: an execution through the pipeline and a Python worker (the test LM) on
 * an embedded log, `dspex otel` in a process of its own, and a real OpenTelemetry Collector receiving
 * OTLP/HTTP: the execution's spans arrive as one trace, execution → stages → LM calls, with the GenAI
 * attributes, and the pipeline's metrics arrive as histograms.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { traceIdOf } from "../../app/otel/index.ts";
import { dspy, type LogOptions, program, v } from "../../index.ts";
import { findPython } from "../../processors/workers/python.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { type BackendUnderTest, embeddedBackend, skippedHere, temporaryFolder } from "../support/backends.ts";
import { dspex as dspexCli, stopChild } from "../support/cli.ts";
import { dspexHere } from "../support/dspex-here.ts";
import { kafkaBackend } from "../support/kafka.ts";
import { collectorBinary, freePort, type ReceivedSpan, startCollector } from "../support/otel-collector.ts";
import { eventually } from "../support/waits.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the OpenTelemetry export test: ${found.reason}`);
const binary = found.python ? collectorBinary() : undefined;

/** How the test process and the `dspex otel` child both open the same log. */
const logOf = (backend: BackendUnderTest): { options: LogOptions; args: string[] } => {
  const config = backend.freshConfig();
  if (config.backend === "embedded") {
    const path = config.path ?? join(temporaryFolder("otel-"), "log.db");
    return { options: { backend: "embedded", log: path }, args: ["--backend", "embedded", "--log", path] };
  }
  if (config.backend !== "kafka") throw new Error(`no OpenTelemetry test on ${config.backend}`);
  const file = join(temporaryFolder("otel-config-"), "dspex.config.json");
  writeFileSync(
    file,
    JSON.stringify({ backend: "kafka", kafka: { brokers: config.brokers, namespace: config.namespace } }),
  );
  return { options: { config: file }, args: ["--config", file] };
};

const qa = program("otel-qa")
  .input("question: str")
  .variable("model", v.model(["dspex/test"]))
  .stage("answer", dspy.predict("question -> answer"))
  .stage("summary", dspy.predict("question, answer -> summary"), { dependsOn: ["answer"] });

describe.skipIf(!binary).each([embeddedBackend, kafkaBackend])(
  "dspex otel (Python worker, OpenTelemetry Collector): $name",
  (backend: BackendUnderTest) => {
    if (skippedHere(backend)) return;
    const stops: (() => Promise<unknown>)[] = [];
    afterAll(async () => {
      for (const stop of stops.reverse()) await stop();
    });
    let collector: Awaited<ReturnType<typeof startCollector>>;
    beforeAll(async () => {
      collector = await startCollector(binary!);
      stops.push(collector.stop);
    });

    /**
     * The spans of an execution's trace at the collector, once its root arrived, each once. Delivery is at
     * least once (a batch whose partition moves to the other exporter before its commit is sent again), so
     * a span may arrive twice: then as the very same span, ids and times and all.
     */
    const traceOf = async (executionId: string) => {
      const received = await eventually(
        async () => {
          const mine = collector.spans().filter((span) => span.traceId === traceIdOf(executionId));
          return mine.some((span) => span.parentSpanId === "") ? mine : undefined;
        },
        90_000,
        `the spans of execution ${executionId} at the collector`,
      );
      const once = new Map(received.map((span) => [span.spanId, span]));
      // The same span, whichever exporter (its own service.instance.id) sent it.
      const sent = ({ resource: _resource, ...span }: ReceivedSpan) => span;
      for (const span of received) expect(sent(span)).toEqual(sent(once.get(span.spanId)!));
      return [...once.values()];
    };

    it("spans of one execution arrive as one trace: execution → stages → LM calls, and metrics arrive", async () => {
      const log = logOf(backend);
      const { dspex, stop } = await dspexHere({ log: log.options, processors: ["pipeline"] });
      stops.push(stop);
      const registered = await dspex.register(qa);
      const execute = async (question: string, sessionId?: string) => {
        const result = await dspex.execute({ program: registered, inputs: { question }, sessionId });
        expect(result.type).toBe("ExecutionCompleted");
        return (result.data as { executionId: string }).executionId;
      };
      // One execution before the exporters start (history), three while they run (live, with sessions:
      // an execution's events and its result are on partitions of different keys). Two exporters of one
      // group share the results' partitions (on Kafka; the embedded log here has one partition).
      const before = await execute("what is a span?");
      const exporters = [1, 2].map(() =>
        dspexCli(
          ["otel", ...log.args, "--endpoint", collector.endpoint, "--status-every", "200"],
          process.env,
        ),
      );
      for (const exporter of exporters) {
        stops.push(() => stopChild(exporter.child));
        await exporter.waitFor(/exporting .* as group dspex-otel/);
      }
      const live = await Promise.all(
        ["trace", "span id", "stage"].map((word, i) => execute(`what is a ${word}?`, `otel-session-${i}`)),
      );

      const stepResults = async (executionId: string) =>
        (await readEvents(dspex.log, Topics.stepResults)).flatMap((r) =>
          "event" in r && r.event.type === "StepCompleted" && r.event.data.executionId === executionId
            ? [r.event]
            : [],
        );
      for (const executionId of [before, ...live]) {
        const spans = await traceOf(executionId);
        const roots = spans.filter((span) => span.parentSpanId === "");
        expect(roots).toHaveLength(1);
        const root = roots[0]!;
        expect(root.name).toBe("invoke_workflow otel-qa");
        expect(root.attributes).toMatchObject({
          "gen_ai.operation.name": "invoke_workflow",
          "dspex.execution.id": executionId,
          "dspex.execution.outcome": "completed",
        });
        expect(root.resource["service.name"]).toBe("dspex");

        const stages = spans.filter((span) => span.parentSpanId === root.spanId);
        expect(stages.map((span) => span.name).sort()).toEqual(["stage answer", "stage summary"]);
        const childrenOf = (parent: ReceivedSpan) =>
          spans.filter((span) => span.parentSpanId === parent.spanId);
        expect(spans).toHaveLength(1 + stages.length + stages.flatMap(childrenOf).length);

        const completedSteps = await stepResults(executionId);
        for (const stage of stages) {
          const calls = childrenOf(stage);
          expect(calls.length).toBeGreaterThan(0);
          for (const call of calls) {
            expect(call.name).toBe("chat dspex/test");
            expect(call.kind).toBe(3); // SPAN_KIND_CLIENT
            expect(call.attributes).toMatchObject({
              "gen_ai.operation.name": "chat",
              "gen_ai.request.model": "dspex/test",
              "gen_ai.provider.name": "dspex",
            });
            expect(BigInt(call.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(stage.startTimeUnixNano));
          }
          const completed = completedSteps.find((event) => `stage ${event.data.stageId}` === stage.name)!;
          const tokens = (key: string) =>
            calls.reduce((sum, call) => sum + Number(call.attributes[key] ?? 0), 0);
          expect(tokens("gen_ai.usage.input_tokens")).toBe(completed.data.usage.promptTokens);
          expect(tokens("gen_ai.usage.output_tokens")).toBe(completed.data.usage.completionTokens);
          expect(completed.data.usage.promptTokens).toBeGreaterThan(0);
        }
        expect(BigInt(root.endTimeUnixNano)).toBeGreaterThan(BigInt(root.startTimeUnixNano));
        if (executionId !== before) expect(root.attributes["session.id"]).toMatch(/^otel-session-/);
      }

      // Each exporter's histograms are cumulative from its start, one series per process (service.instance.id):
      // their latest counts add up to every execution (or more: a batch sent again is measured again).
      await eventually(
        async () => {
          const latest = new Map<unknown, number>();
          for (const metric of collector.metrics())
            if (metric.name === "dspex.execution.duration_ms" && metric.unit === "ms")
              latest.set(metric.resource["service.instance.id"], metric.count);
          const counted = [...latest.values()].reduce((sum, count) => sum + count, 0);
          return counted >= 4 ? true : undefined;
        },
        60_000,
        "the execution.duration_ms histograms of the four executions at the collector",
      );
    }, 240_000);
  },
);

describe.skipIf(!binary)("dspex otel through an outage of its endpoint, and a restart (embedded log)", () => {
  const stops: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it("waits for the endpoint, exports when it is back, and a restarted exporter sends nothing twice", async () => {
    const log = logOf(embeddedBackend);
    const { dspex, stop } = await dspexHere({ log: log.options, processors: ["pipeline"] });
    stops.push(stop);
    const registered = await dspex.register(qa);
    const execute = async (question: string) => {
      const result = await dspex.execute({ program: registered, inputs: { question } });
      return (result.data as { executionId: string }).executionId;
    };
    const first = await execute("is anyone there?");

    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const exporterArgs = ["otel", ...log.args, "--endpoint", endpoint, "--status-every", "200"];
    const exporter = dspexCli(exporterArgs, process.env);
    stops.push(() => stopChild(exporter.child));
    await exporter.waitFor(new RegExp(`cannot export to ${endpoint}: .*; retrying`));

    const collector = await startCollector(binary!, port);
    stops.push(collector.stop);
    await exporter.waitFor(new RegExp(`${endpoint} is back`));
    const spansOf = (executionId: string) =>
      collector.spans().filter((span) => span.traceId === traceIdOf(executionId));
    const exported = await eventually(
      async () => (spansOf(first).length > 0 ? spansOf(first) : undefined),
      60_000,
      "the first execution's spans",
    );
    expect(exported.filter((span) => span.parentSpanId === "")).toHaveLength(1);
    expect(await stopChild(exporter.child)).toBe(0);
    expect(exporter.lines.filter((line) => line.includes("cannot export"))).toHaveLength(1);

    // The same group again: it resumes after what was committed, so only the new execution is sent.
    const restarted = dspexCli(exporterArgs, process.env);
    stops.push(() => stopChild(restarted.child));
    await restarted.waitFor(/exporting .* as group dspex-otel/);
    const second = await execute("and now?");
    await eventually(
      async () => (spansOf(second).some((span) => span.parentSpanId === "") ? true : undefined),
      60_000,
      "the second execution's spans",
    );
    await restarted.waitFor(/exported 1 executions/);
    expect(spansOf(first)).toHaveLength(exported.length);
  }, 240_000);
});
