import { describe, expect, it } from "vitest";
import { reoptimizationProcessor } from "../../../processors/optimizers/reoptimize.ts";
import type { Envelope } from "../../../streams/envelope.ts";
import {
  type DspexEvent,
  ExecutionCompleted,
  ExecutionFailed,
  OptimizationCompleted,
} from "../../../streams/events/index.ts";

const ctx = { now: 0, source: { topic: "t", partition: 0, offset: 0 }, consumer: "test" };
let n = 0;
const base = () => ({
  requestId: `r${++n}`,
  executionId: `x${n}`,
  programId: "qa",
  durationMs: 1,
  usage: { calls: 1 },
});
const ok = () =>
  ExecutionCompleted.create({ stream: "s", key: "k", data: { ...base(), outputs: {}, stages: {} } });
const bad = () =>
  ExecutionFailed.create({
    stream: "s",
    key: "k",
    data: {
      ...base(),
      failedStage: "a",
      error: { kind: "timeout", message: "m", retryable: true },
      partial: {},
    },
  });

const processor = reoptimizationProcessor([
  {
    programId: "qa",
    threshold: 0.8,
    minExecutions: 5,
    margin: 0.05,
    request: {
      optimizer: "bootstrap",
      variables: [],
      trainset: [{ id: "t", inputs: { q: "a" }, expected: { a: "b" } }],
      devset: [{ id: "d", inputs: { q: "a" }, expected: { a: "b" } }],
      metric: { name: "exact_match", params: {} },
      budget: { maxCalls: 100 },
      seed: 0,
      params: {},
    },
  },
]);

const drive = (events: Envelope[]) => {
  let state = processor.initialState;
  const emitted: Envelope[] = [];
  for (const event of events) {
    const out = processor.handle(state, event as DspexEvent, ctx);
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

  it("opens a fresh window once the optimization completes", () => {
    const first = drive([bad(), bad(), bad(), bad(), bad()]);
    const id = (first[0]!.data as { optimizationId: string }).optimizationId;
    const done = OptimizationCompleted.create({
      stream: "o",
      key: id,
      data: {
        optimizationId: id,
        programId: "qa",
        baselineScore: 0,
        bestScore: 0,
        bestConfig: {},
        accepted: false,
        trials: 1,
        calls: 1,
      },
    });
    const after = drive([bad(), bad(), bad(), bad(), bad(), done, bad(), bad(), bad(), bad(), bad()]);
    expect(after).toHaveLength(2);
    expect((after[1]!.data as { optimizationId: string }).optimizationId).not.toBe(id);
  });
});
