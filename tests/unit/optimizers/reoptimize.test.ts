import { describe, expect, it } from "vitest";
import { reoptimizationProcessor } from "../../../processors/optimizers/reoptimize.ts";
import type { Envelope } from "../../../streams/envelope.ts";
import {
  AlertRaised,
  type DspexEvent,
  executionMetric,
  MetricRecorded,
  optimizationMetric,
} from "../../../streams/events/index.ts";

const ctx = {
  now: 0,
  source: { topic: "t", partition: 0, offset: 0 },
  key: "k",
  consumer: "test",
  table: undefined,
};
let n = 0;
/** The metric the pipeline records once per execution, as it labels it. */
const execution = (status: "completed" | "failed", origin = "request") =>
  MetricRecorded.create({
    stream: "metrics-qa",
    key: "qa",
    data: {
      programId: "qa",
      name: executionMetric,
      value: 1,
      unit: "ms",
      labels: { status, origin },
      executionId: `x${++n}`,
    },
  });
const ok = () => execution("completed");
const bad = () => execution("failed");
const completedOptimization = (optimizationId: string) =>
  MetricRecorded.create({
    stream: "metrics-qa",
    key: "qa",
    data: { programId: "qa", name: optimizationMetric, value: 0, unit: "score", labels: { optimizationId } },
  });

const request = {
  optimizer: "bootstrap" as const,
  variables: [],
  trainset: [{ id: "t", inputs: { q: "a" }, expected: { a: "b" } }],
  devset: [{ id: "d", inputs: { q: "a" }, expected: { a: "b" } }],
  metric: { name: "exact_match", params: {} },
  budget: { maxCalls: 100 },
  seed: 0,
  params: {},
};

const processor = reoptimizationProcessor([
  { programId: "qa", threshold: 0.8, minExecutions: 5, margin: 0.05, request },
]);

const drive = (events: Envelope[], reoptimizer = processor) => {
  let state = reoptimizer.initialState;
  const emitted: Envelope[] = [];
  for (const event of events) {
    const out = reoptimizer.handle(state, event as DspexEvent, ctx);
    state = out.state;
    emitted.push(...out.emit);
  }
  return emitted;
};

describe("continuous re-optimization", () => {
  it("starts one optimization when the success rate drops below the threshold, with the margin", () => {
    const emitted = drive([ok(), ok(), bad(), ok(), bad(), bad(), bad()]);
    expect(emitted).toHaveLength(1);
    const request = emitted[0]!;
    expect(request.type).toBe("OptimizationRequested");
    expect((request.data as { params: { margin: number } }).params.margin).toBe(0.05);
  });

  it("stays quiet while quality holds or too few executions were seen", () => {
    expect(drive([ok(), ok(), ok(), ok(), ok(), ok(), bad()])).toHaveLength(0);
    expect(drive([bad(), bad(), bad()])).toHaveLength(0);
  });

  it("leaves evaluations out: they are not production traffic", () => {
    expect(drive(Array.from({ length: 10 }, () => execution("failed", "evaluation")))).toHaveLength(0);
  });

  it("opens a fresh window once the optimization completes", () => {
    const first = drive([bad(), bad(), bad(), bad(), bad()]);
    const id = (first[0]!.data as { optimizationId: string }).optimizationId;
    const done = completedOptimization(id);
    const after = drive([bad(), bad(), bad(), bad(), bad(), done, bad(), bad(), bad(), bad(), bad()]);
    expect(after).toHaveLength(2);
    expect((after[1]!.data as { optimizationId: string }).optimizationId).not.toBe(id);
  });
});

describe("continuous re-optimization answering alerts", () => {
  const onAlert = reoptimizationProcessor([
    {
      programId: "qa",
      trigger: "alert",
      threshold: 0,
      metric: "judge",
      minExecutions: 1,
      margin: 0.05,
      request,
    },
  ]);
  const alert = (metric: string, programId = "qa") =>
    AlertRaised.create({
      stream: `alerts-${programId}`,
      key: programId,
      correlationId: "c1",
      data: {
        alertId: `alert-${++n}`,
        programId,
        metric,
        labels: {},
        method: "ewma",
        direction: "down",
        baseline: 0.9,
        current: 0.4,
        threshold: 0.3,
        observations: 20,
      },
    });
  const run = (events: Envelope[]) => drive(events, onAlert);

  it("requests an optimization caused by the alert on its quality series, naming it", () => {
    const raised = alert("judge");
    const [request, ...rest] = run([raised]);
    expect(rest).toEqual([]);
    expect(request).toMatchObject({
      type: "OptimizationRequested",
      causationId: raised.id,
      correlationId: "c1",
      data: { programId: "qa", params: { triggeredByAlert: raised.data.alertId, triggeredAtQuality: 0.4 } },
    });
  });

  it("ignores alerts on other series or programs, low quality without an alert, and a second alert while one runs", () => {
    expect(run([alert("execution.duration_ms"), alert("judge", "other")])).toEqual([]);
    expect(run([bad(), bad(), bad(), bad(), bad(), bad()])).toEqual([]);
    const first = run([alert("judge"), alert("judge")]);
    expect(first).toHaveLength(1);
    const id = (first[0]!.data as { optimizationId: string }).optimizationId;
    expect(run([alert("judge"), completedOptimization(id), alert("judge")])).toHaveLength(2);
  });
});
