import { describe, expect, it } from "vitest";
import { providerOf } from "../../../app/otel/conventions.ts";
import {
  executionSpans,
  metricPointOf,
  type SpanDraft,
  spanIdOf,
  traceIdOf,
  withoutPayloads,
} from "../../../app/otel/index.ts";
import {
  type DspexEvent,
  ExecutionCompleted,
  ExecutionFailed,
  ExecutionStarted,
  MetricRecorded,
  StageCompleted,
  StageFailed,
  StageScheduled,
  StepCompleted,
  StepDispatched,
  StepFailed,
  StepStarted,
} from "../../../streams/events/index.ts";

const base = Date.UTC(2026, 0, 1);
const at = (ms: number) => new Date(base + ms).toISOString();
const header = (ms: number) => ({ stream: "execution-e1", key: "s1", occurredAt: at(ms) });
const usage = { calls: 1, promptTokens: 30, completionTokens: 7 };
const error = { kind: "timeout" as const, message: "too slow", retryable: true };

const started = ExecutionStarted.create({
  ...header(0),
  data: {
    executionId: "e1",
    requestId: "r1",
    programId: "qa",
    programVersion: 2,
    sessionId: "s1",
    inputs: {},
    levels: [["retrieve"], ["answer"]],
  },
});
const dispatched = (stepId: string, attempt: number, ms: number) =>
  StepDispatched.create({
    ...header(ms),
    data: {
      stepId,
      executionId: "e1",
      stageId: "answer",
      attempt,
      programId: "qa",
      module: "Predict",
      signature: { inputs: [{ name: "question" }], outputs: [{ name: "answer" }] },
      inputs: { question: "q" },
      lm: { model: "openai/gpt-4o-mini", temperature: 0.3, maxTokens: 256 },
      sessionKey: "s1",
      timeoutMs: 10_000,
    },
  });
const stepRef = (stepId: string, attempt: number) => ({
  stepId,
  executionId: "e1",
  stageId: "answer",
  attempt,
  worker: "w1",
});
const completedStep = (stepId: string, attempt: number, ms: number, extra: object = {}) =>
  ({
    ...StepCompleted.create({
      ...header(ms),
      data: { ...stepRef(stepId, attempt), outputs: { answer: "a" }, usage, latencyMs: 40 },
    }),
    ...extra,
  }) as DspexEvent;

/** retrieve (native) completes; answer's attempt 0 times out, is retried, and attempt 1 completes. */
const retried: DspexEvent[] = [
  started,
  StageCompleted.create({
    ...header(20),
    data: { executionId: "e1", stageId: "retrieve", attempt: 0, outputs: {}, durationMs: 15 },
  }),
  dispatched("step-a0", 0, 25),
  StepStarted.create({ ...header(30), data: stepRef("step-a0", 0) }),
  StepFailed.create({ ...header(80), data: { ...stepRef("step-a0", 0), error, latencyMs: 50 } }),
  StageFailed.create({
    ...header(81),
    data: { executionId: "e1", stageId: "answer", attempt: 0, error, willRetry: true },
  }),
  StageScheduled.create({
    ...header(82),
    data: { executionId: "e1", stageId: "answer", attempt: 1, notBefore: at(180) },
  }),
  dispatched("step-a1", 1, 180),
  StepStarted.create({ ...header(185), data: stepRef("step-a1", 1) }),
  completedStep("step-a1", 1, 230),
  StageCompleted.create({
    ...header(231),
    data: { executionId: "e1", stageId: "answer", attempt: 1, outputs: { answer: "a" }, durationMs: 51 },
  }),
  ExecutionCompleted.create({
    ...header(232),
    key: "r1",
    data: {
      requestId: "r1",
      executionId: "e1",
      programId: "qa",
      outputs: { answer: "a" },
      stages: {},
      durationMs: 232,
      usage,
    },
  }),
];

const byName = (spans: SpanDraft[], name: string) => spans.filter((span) => span.name === name);

describe("executionSpans", () => {
  it("gives nothing before the execution's result", () => {
    expect(executionSpans("e1", retried.slice(0, -1))).toEqual([]);
  });

  it("is one trace: the execution → one span per stage attempt → the LM call of each step", () => {
    const spans = executionSpans("e1", retried);
    const traceId = traceIdOf("e1");
    expect(spans.every((span) => span.traceId === traceId)).toBe(true);
    const [root] = spans;
    expect(root).toMatchObject({
      spanId: spanIdOf("e1", "execution"),
      name: "invoke_workflow qa",
      startMs: base,
      endMs: base + 232,
    });
    expect(root!.parentSpanId).toBeUndefined();
    expect(root!.attributes).toMatchObject({
      "gen_ai.operation.name": "invoke_workflow",
      "gen_ai.workflow.name": "qa",
      "session.id": "s1",
      "dspex.execution.outcome": "completed",
      "gen_ai.usage.input_tokens": 30,
    });

    const stages = spans.filter((span) => span.parentSpanId === root!.spanId);
    expect(
      stages.map((s) => [s.name, s.attributes["dspex.stage.attempt"], s.attributes["dspex.stage.outcome"]]),
    ).toEqual([
      ["stage retrieve", 0, "completed"],
      ["stage answer", 0, "retried"],
      ["stage answer", 1, "completed"],
    ]);
    // A native stage starts its duration before its end; a DSPy stage's attempt at its step's dispatch.
    expect(stages.map((s) => [s.startMs - base, s.endMs - base])).toEqual([
      [5, 20],
      [25, 81],
      [180, 231],
    ]);
    expect(stages[1]!.error).toBe("timeout: too slow");

    const calls = byName(spans, "chat openai/gpt-4o-mini");
    expect(calls.map((c) => c.parentSpanId)).toEqual([stages[1]!.spanId, stages[2]!.spanId]);
    expect(calls[0]).toMatchObject({
      kind: "client",
      startMs: base + 30,
      endMs: base + 80,
      error: "timeout: too slow",
    });
    expect(calls[0]!.attributes["error.type"]).toBe("timeout");
    expect(calls[1]!.attributes).toEqual({
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "openai",
      "gen_ai.system": "openai",
      "gen_ai.request.model": "openai/gpt-4o-mini",
      "gen_ai.request.temperature": 0.3,
      "gen_ai.request.max_tokens": 256,
      "gen_ai.usage.input_tokens": 30,
      "gen_ai.usage.output_tokens": 7,
      "dspex.lm.calls": 1,
      "dspex.step.id": "step-a1",
      "dspex.step.module": "Predict",
      "dspex.step.worker": "w1",
    });
    expect(spans).toHaveLength(1 + 3 + 2);
  });

  it("gives the same ids on every export, and ignores other executions' events", () => {
    const other = { ...started, data: { ...started.data, executionId: "e2" } } as DspexEvent;
    const bySpanId = (spans: SpanDraft[]) => [...spans].sort((a, b) => a.spanId.localeCompare(b.spanId));
    expect(bySpanId(executionSpans("e1", [other, ...retried].reverse()))).toEqual(
      bySpanId(executionSpans("e1", retried)),
    );
    expect(new Set(executionSpans("e1", retried).map((s) => s.spanId)).size).toBe(6);
  });

  it("makes one span per recorded LM call, laid end to end from the step's start; content only when asked", () => {
    const calls = [
      {
        model: "gpt-4o-mini-2024",
        messages: [{ role: "user", content: "q?" }],
        completion: "a",
        promptTokens: 20,
        completionTokens: 3,
        latencyMs: 12,
        cost: 0.001,
      },
      { model: "gpt-4o-mini-2024", promptTokens: 10, completionTokens: 4, latencyMs: 100 },
    ];
    const events = retried.map((event) =>
      event.type === "StepCompleted"
        ? completedStep("step-a1", 1, 230, { data: { ...event.data, lmCalls: calls } })
        : event,
    );
    const spans = byName(executionSpans("e1", events), "chat openai/gpt-4o-mini").slice(1);
    expect(spans.map((s) => [s.startMs - base, s.endMs - base])).toEqual([
      [185, 197],
      [197, 230], // cut at the step's end
    ]);
    expect(spans.map((s) => s.attributes["gen_ai.usage.input_tokens"])).toEqual([20, 10]);
    expect(spans[0]!.attributes).toMatchObject({
      "gen_ai.response.model": "gpt-4o-mini-2024",
      "dspex.lm.cost_usd": 0.001,
    });
    expect(spans[0]!.attributes["gen_ai.input.messages"]).toBeUndefined();

    const [withContent] = byName(
      executionSpans("e1", events, { content: true }),
      "chat openai/gpt-4o-mini",
    ).slice(1);
    expect(JSON.parse(String(withContent!.attributes["gen_ai.input.messages"]))).toEqual([
      { role: "user", parts: [{ type: "text", content: "q?" }] },
    ]);
    expect(JSON.parse(String(withContent!.attributes["gen_ai.output.messages"]))).toEqual([
      { role: "assistant", parts: [{ type: "text", content: "a" }] },
    ]);
  });

  it("gives the same spans from events without their payloads (what the exporter keeps in memory)", () => {
    const calls = [
      { model: "m", messages: [{ role: "user", content: "q?" }], completion: "a", latencyMs: 5 },
    ];
    const events = retried.map((event) =>
      event.type === "StepCompleted"
        ? ({ ...event, data: { ...event.data, lmCalls: calls } } as DspexEvent)
        : event,
    );
    for (const content of [false, true]) {
      const slim = events.map((event) => withoutPayloads(event, { content }));
      expect(executionSpans("e1", slim, { content })).toEqual(executionSpans("e1", events, { content }));
    }
    const completed = withoutPayloads(events.find((e) => e.type === "StepCompleted")!);
    expect(JSON.stringify(completed)).not.toContain("q?");
  });

  it("marks a failed execution and its unfinished stage as errors", () => {
    const failed = ExecutionFailed.create({
      ...header(100),
      key: "r1",
      data: {
        requestId: "r1",
        executionId: "e1",
        programId: "qa",
        failedStage: "answer",
        error: { ...error, retryable: false },
        partial: {},
        durationMs: 100,
        usage: { calls: 0, promptTokens: 0, completionTokens: 0 },
      },
    });
    const spans = executionSpans("e1", [started, dispatched("step-a0", 0, 25), failed]);
    expect(spans[0]).toMatchObject({ error: "stage answer: timeout: too slow" });
    expect(spans[0]!.attributes["dspex.execution.outcome"]).toBe("failed");
    // The step never reported: its stage's and its own span last until the execution ended, without usage.
    const [stage] = byName(spans, "stage answer");
    expect(stage!.attributes["dspex.stage.outcome"]).toBe("unfinished");
    expect([stage!.startMs - base, stage!.endMs - base]).toEqual([25, 100]);
    const [call] = byName(spans, "chat openai/gpt-4o-mini");
    expect(call!.parentSpanId).toBe(stage!.spanId);
    expect([call!.startMs - base, call!.endMs - base]).toEqual([25, 100]);
  });
});

describe("providerOf", () => {
  it("names the provider as the GenAI conventions do", () => {
    expect(["openai/gpt-4o", "gemini/gemini-2.0", "dspex/test", "gpt-4o"].map(providerOf)).toEqual([
      "openai",
      "gcp.gemini",
      "dspex",
      "litellm",
    ]);
  });
});

describe("metricPointOf", () => {
  it("is a histogram measurement named dspex.<name>, with the labels and the program as attributes", () => {
    const event = MetricRecorded.create({
      stream: "metrics-qa",
      key: "qa",
      data: {
        programId: "qa",
        name: "stage.duration ms",
        value: 12,
        unit: "ms",
        labels: { stage: "answer" },
        executionId: "e1",
      },
    });
    expect(metricPointOf(event)).toEqual({
      name: "dspex.stage.duration_ms",
      unit: "ms",
      value: 12,
      attributes: { stage: "answer", "dspex.program.id": "qa" },
    });
  });
});
