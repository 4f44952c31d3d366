import { describe, expect, it } from "vitest";
import {
  averageDurationMs,
  canonicalJson,
  configurationOf,
  executionsProjection,
  latencyPercentile,
  type MetricsView,
  metricsOf,
  metricsProjection,
  project,
  type SessionView,
  sessionsProjection,
  stateHash,
} from "../../../projections/index.ts";
import {
  ExecutionCompleted,
  ExecutionFailed,
  ExecutionRejected,
  ExecutionRequested,
  ExecutionStarted,
  MetricRecorded,
  SessionExpired,
  StageCompleted,
  StageFailed,
  StageScheduled,
  StepStarted,
} from "../../../streams/events/index.ts";

const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString();
const usage = { calls: 1, promptTokens: 10, completionTokens: 5 };
const error = { kind: "timeout" as const, message: "too slow", retryable: true };

const requested = (n: number, overrides = {}) =>
  ExecutionRequested.create({
    stream: `request-r${n}`,
    key: `r${n}`,
    occurredAt: at(n),
    data: { requestId: `r${n}`, programId: "qa", inputs: {}, overrides },
  });
const started = (n: number, session = "s1") =>
  ExecutionStarted.create({
    stream: `execution-e${n}`,
    key: `e${n}`,
    occurredAt: at(n),
    data: {
      executionId: `e${n}`,
      requestId: `r${n}`,
      programId: "qa",
      programVersion: 1,
      sessionId: session,
      inputs: {},
      levels: [["retrieve"], ["answer"]],
    },
  });
const completed = (n: number, durationMs: number, second = n + 1) =>
  ExecutionCompleted.create({
    stream: `execution-e${n}`,
    key: `r${n}`,
    occurredAt: at(second),
    data: {
      requestId: `r${n}`,
      executionId: `e${n}`,
      programId: "qa",
      outputs: {},
      stages: {},
      durationMs,
      usage,
    },
  });
const failed = (n: number, durationMs: number) =>
  ExecutionFailed.create({
    stream: `execution-e${n}`,
    key: `r${n}`,
    occurredAt: at(n + 1),
    data: {
      requestId: `r${n}`,
      executionId: `e${n}`,
      programId: "qa",
      failedStage: "answer",
      error,
      partial: {},
      durationMs,
      usage,
    },
  });
const stageEvent = (n: number) => ({ stream: `execution-e${n}`, key: `e${n}` });

describe("executions projection", () => {
  it("tracks each stage through scheduling, retries and completion", () => {
    const state = project(executionsProjection, [
      started(1),
      StageScheduled.create({
        ...stageEvent(1),
        data: { executionId: "e1", stageId: "retrieve", attempt: 0 },
      }),
      StageCompleted.create({
        ...stageEvent(1),
        data: { executionId: "e1", stageId: "retrieve", attempt: 0, outputs: {}, durationMs: 3 },
      }),
      StepStarted.create({
        ...stageEvent(1),
        data: { stepId: "x", executionId: "e1", stageId: "answer", attempt: 0 },
      }),
      StageFailed.create({
        ...stageEvent(1),
        data: { executionId: "e1", stageId: "answer", attempt: 0, error, willRetry: true },
      }),
    ]);
    expect(state.get("e1")).toMatchObject({
      status: "running",
      sessionId: "s1",
      stages: {
        retrieve: { status: "completed", attempt: 0, durationMs: 3 },
        answer: { status: "retrying", attempt: 0, error },
      },
    });
  });

  it("never lets an older attempt or a late step event undo a stage's outcome", () => {
    const state = project(executionsProjection, [
      started(1),
      StageCompleted.create({
        ...stageEvent(1),
        data: { executionId: "e1", stageId: "answer", attempt: 1, outputs: {}, durationMs: 9 },
      }),
      StageFailed.create({
        ...stageEvent(1),
        data: { executionId: "e1", stageId: "answer", attempt: 0, error, willRetry: true },
      }),
      StepStarted.create({
        ...stageEvent(1),
        data: { stepId: "x", executionId: "e1", stageId: "answer", attempt: 1 },
      }),
    ]);
    expect(state.get("e1")!.stages.answer).toEqual({ status: "completed", attempt: 1, durationMs: 9 });
  });

  it("ends executions as completed, failed (with the stage and error) or rejected", () => {
    const state = project(executionsProjection, [
      started(1),
      completed(1, 100),
      failed(1, 5),
      started(2),
      failed(2, 50),
      ExecutionRejected.create({
        stream: "request-r3",
        key: "r3",
        data: { requestId: "r3", programId: "qa", code: "invalid", reason: "question must be a string" },
      }),
    ]);
    expect(state.get("e1")).toMatchObject({ status: "completed", durationMs: 100 });
    expect(state.get("e2")).toMatchObject({ status: "failed", failedStage: "answer", error });
    expect(state.get("rejected/r3")).toMatchObject({
      status: "rejected",
      error: { kind: "invalid", message: "question must be a string" },
    });
  });
});

describe("sessions projection", () => {
  const state = project(sessionsProjection, [
    started(1),
    completed(1, 100),
    started(2),
    failed(2, 300),
    started(3, "s2"),
  ]);
  const s1 = state.get("session/s1") as SessionView;

  it("counts executions and averages finished durations per session", () => {
    expect(s1).toMatchObject({
      executions: ["e1", "e2"],
      started: 2,
      completed: 1,
      failed: 1,
      totalDurationMs: 400,
    });
    expect(averageDurationMs(s1)).toBe(200);
    expect(s1.lastActivityAt).toBe(at(3));
  });

  it("marks a session the pipeline expired, and revives it with its next execution", () => {
    const expired = SessionExpired.create({
      stream: "session-s1",
      key: "s1",
      occurredAt: at(10),
      data: { sessionId: "s1", lastActivityAt: at(2), ttlMs: 5000 },
    });
    const after = project(sessionsProjection, [started(1), completed(1, 100), started(2), expired]);
    expect(after.get("session/s1")).toMatchObject({ expiredAt: at(10), started: 2 });
    const revived = project(sessionsProjection, [started(1), expired, started(11)]).get("session/s1");
    expect(revived).toMatchObject({ started: 2, lastActivityAt: at(11) });
    expect(revived).not.toHaveProperty("expiredAt");
  });

  it("ignores results of executions it never saw start", () => {
    expect(project(sessionsProjection, [completed(9, 10)]).size).toBe(0);
  });

  it("leaves out requests without a session (they run under their own request id)", () => {
    const anonymous = started(5, "r5");
    expect(project(sessionsProjection, [anonymous, completed(5, 10)]).size).toBe(0);
  });

  it("aggregates what a session's executions measured, and nothing of other executions", () => {
    const quality = (execution: string, value: number) =>
      MetricRecorded.create({
        stream: "metrics-qa",
        key: "qa",
        data: { programId: "qa", name: "quality", value, executionId: execution },
      });
    const measured = project(sessionsProjection, [
      started(1),
      started(2),
      started(3, "s2"),
      quality("e1", 1),
      quality("e2", 0.5),
      quality("e3", 0),
      quality("e9", 0),
    ]);
    expect((measured.get("session/s1") as SessionView).recorded).toEqual({
      quality: { count: 2, sum: 1.5, min: 0.5, max: 1 },
    });
    expect((measured.get("session/s2") as SessionView).recorded.quality?.count).toBe(1);
  });
});

describe("metrics projection", () => {
  it("aggregates count, success rate, latency percentiles and tokens per program and configuration", () => {
    const events = [];
    for (let n = 1; n <= 20; n++) {
      events.push(requested(n, n % 2 === 0 ? { temperature: 0.2 } : {}));
      events.push(n === 20 ? failed(n, 1000) : completed(n, n * 10));
    }
    events.push(
      MetricRecorded.create({
        stream: "m",
        key: "qa",
        data: { programId: "qa", name: "accuracy", value: 0.5 },
      }),
    );
    events.push(
      MetricRecorded.create({
        stream: "m",
        key: "qa",
        data: { programId: "qa", name: "accuracy", value: 0.9 },
      }),
    );
    const state = project(metricsProjection, events);
    const program = state.get("program/qa") as MetricsView;
    expect(program).toMatchObject({
      count: 20,
      succeeded: 19,
      failed: 1,
      promptTokens: 200,
      completionTokens: 100,
    });
    expect(program.recorded.accuracy).toEqual({ count: 2, sum: 1.4, min: 0.5, max: 0.9 });
    expect(latencyPercentile(program, 50)).toBeGreaterThanOrEqual(100);
    expect(latencyPercentile(program, 50)).toBeLessThanOrEqual(100 * 1.02);
    expect(latencyPercentile(program, 95)).toBeGreaterThanOrEqual(190);
    expect(latencyPercentile(program, 95)).toBeLessThanOrEqual(190 * 1.02);
    const byConfiguration = Object.fromEntries(metricsOf(state).map((m) => [m.configuration, m]));
    expect(byConfiguration.default).toMatchObject({ count: 10, successRate: 1 });
    expect(byConfiguration[configurationOf({ temperature: 0.2 })]).toMatchObject({
      count: 10,
      successRate: 0.9,
    });
    expect(byConfiguration["*"]).toMatchObject({ count: 20, successRate: 0.95 });
  });
});

describe("state hash", () => {
  it("does not depend on key order, does depend on values", () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
    expect(stateHash(new Map([["x", { a: 1, b: 2 }]]))).toBe(stateHash(new Map([["x", { b: 2, a: 1 }]])));
    expect(stateHash({ a: 1 })).not.toBe(stateHash({ a: 2 }));
  });
});
