import { describe, expect, it } from "vitest";
import {
  attemptsOf,
  deadLettersProjection,
  type OptimizationView,
  optimizationsProjection,
  project,
  type TraceView,
  tracesProjection,
  winnerTrialOf,
} from "../../../projections/index.ts";
import {
  DeadLettered,
  ExecutionCompleted,
  ExecutionStarted,
  OptimizationCompleted,
  OptimizationStarted,
  StageCompleted,
  StageFailed,
  StageScheduled,
  StepCompleted,
  StepDispatched,
  StepStarted,
  TrialEvaluated,
  TrialProposed,
} from "../../../streams/events/index.ts";

const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString();
const onExecution = (second: number) => ({ stream: "execution-e1", key: "s1", occurredAt: at(second) });
const usage = { calls: 1, promptTokens: 10, completionTokens: 2 };
const signature = {
  instructions: "Answer briefly.",
  inputs: [{ name: "question", type: "str" }],
  outputs: [{ name: "answer", type: "str" }],
};
const step = (attempt: number) => ({ stepId: `st${attempt}`, executionId: "e1", stageId: "answer", attempt });

describe("traces projection", () => {
  const trace = project(tracesProjection, [
    ExecutionStarted.create({
      ...onExecution(0),
      data: {
        executionId: "e1",
        requestId: "r1",
        programId: "qa",
        programVersion: 1,
        sessionId: "s1",
        inputs: { question: "why?" },
        levels: [["answer"]],
      },
    }),
    StageScheduled.create({ ...onExecution(0), data: { executionId: "e1", stageId: "answer", attempt: 0 } }),
    StepDispatched.create({
      ...onExecution(1),
      data: {
        ...step(0),
        programId: "qa",
        module: "Predict",
        signature,
        inputs: { question: "why?" },
        demos: [{ question: "who?", answer: "me" }],
        lm: { model: "dspex/test", temperature: 0.3 },
        variableVersions: { "qa.answer.temperature": 2 },
        sessionKey: "s1",
        timeoutMs: 1000,
      },
    }),
    StageFailed.create({
      ...onExecution(2),
      data: {
        executionId: "e1",
        stageId: "answer",
        attempt: 0,
        error: { kind: "timeout", message: "too slow", retryable: true },
        willRetry: true,
      },
    }),
    StageScheduled.create({
      ...onExecution(2),
      data: { executionId: "e1", stageId: "answer", attempt: 1, notBefore: at(3) },
    }),
    StepCompleted.create({
      ...onExecution(4),
      data: { ...step(1), worker: "w1", outputs: { answer: "because" }, usage, latencyMs: 40 },
    }),
    // A late StepStarted (redelivered) does not move the attempt back from completed.
    StageCompleted.create({
      ...onExecution(5),
      data: {
        executionId: "e1",
        stageId: "answer",
        attempt: 1,
        outputs: { answer: "because" },
        durationMs: 41,
      },
    }),
    StepStarted.create({ ...onExecution(6), data: { ...step(1), worker: "w1" } }),
    ExecutionCompleted.create({
      ...onExecution(7),
      data: {
        requestId: "r1",
        executionId: "e1",
        programId: "qa",
        outputs: { answer: "because" },
        stages: {},
        durationMs: 7000,
        usage,
        evaluationId: "ev1",
        exampleId: "x1",
      },
    }),
  ]).get("e1") as TraceView;

  it("keeps each attempt: its timeline, what it ran with and what came out", () => {
    const [first, retry] = attemptsOf(trace);
    expect(first).toMatchObject({
      stageId: "answer",
      attempt: 0,
      status: "failed",
      scheduledAt: at(0),
      dispatchedAt: at(1),
      endedAt: at(2),
      model: "dspex/test",
      temperature: 0.3,
      instructions: "Answer briefly.",
      demos: [{ question: "who?", answer: "me" }],
      variableVersions: { "qa.answer.temperature": 2 },
      willRetry: true,
    });
    expect(retry).toMatchObject({
      attempt: 1,
      status: "completed",
      notBefore: at(3),
      outputs: { answer: "because" },
      latencyMs: 40,
      worker: "w1",
    });
  });

  it("links an execution to its evaluation and example, with its inputs and outputs", () => {
    expect(trace).toMatchObject({
      inputs: { question: "why?" },
      outputs: { answer: "because" },
      evaluationId: "ev1",
      exampleId: "x1",
    });
  });
});

describe("optimizations projection", () => {
  const onOptimization = (second: number) => ({
    stream: "optimization-o1",
    key: "o1",
    occurredAt: at(second),
  });
  const demos = { "qa.answer.demos": [{ question: "who?", answer: "me" }] };
  const proposed = (trial: number, phase: string, overrides = {}) =>
    TrialProposed.create({
      ...onOptimization(trial + 1),
      data: { optimizationId: "o1", trial, seed: 1, config: { phase, overrides, examples: ["a", "b"] } },
    });
  const evaluated = (trial: number, score: number) =>
    TrialEvaluated.create({
      ...onOptimization(trial + 1),
      data: { optimizationId: "o1", trial, score, calls: 2 },
    });
  const events = [
    OptimizationStarted.create({
      ...onOptimization(0),
      data: {
        optimizationId: "o1",
        programId: "qa",
        optimizer: "random",
        variables: ["qa.answer.demos"],
        seed: 1,
        plannedTrials: 3,
        plannedCalls: 6,
      },
    }),
    proposed(0, "baseline"),
    evaluated(0, 0.5),
    proposed(1, "search", demos),
    evaluated(1, 0.75),
    evaluated(1, 0.75), // redelivered: replaces, never duplicates
    OptimizationCompleted.create({
      ...onOptimization(9),
      data: {
        optimizationId: "o1",
        programId: "qa",
        baselineScore: 0.5,
        bestScore: 0.75,
        bestConfig: demos,
        accepted: true,
        trials: 2,
        calls: 4,
      },
    }),
  ];
  const view = project(optimizationsProjection, events).get("o1") as OptimizationView;

  it("keeps every trial's configuration and score once, in trial order, and the outcome", () => {
    expect(view.trials.map((t) => [t.trial, t.phase, t.score, t.examples])).toEqual([
      [0, "baseline", 0.5, 2],
      [1, "search", 0.75, 2],
    ]);
    expect(view).toMatchObject({ status: "completed", optimizer: "random", accepted: true, calls: 4 });
  });

  it("finds the trial that scored the winner: the final one, else the best that ran its configuration", () => {
    expect(winnerTrialOf(view)?.trial).toBe(1);
    const withFinal = project(optimizationsProjection, [
      ...events,
      proposed(2, "final", demos),
      evaluated(2, 0.7),
    ]);
    expect(winnerTrialOf(withFinal.get("o1")!)?.trial).toBe(2);
  });
});

describe("dead letters projection", () => {
  it("keeps each dead letter once, with its source, reason and original", () => {
    const letter = DeadLettered.create({
      stream: "dlq-dspex.requests",
      key: "bad",
      occurredAt: at(1),
      data: {
        source: { topic: "dspex.requests", partition: 2, offset: "7", consumer: "dspex-pipeline" },
        reason: "not JSON",
        original: "{oops",
        encoding: "utf8",
      },
    });
    const state = project(deadLettersProjection, [letter, letter]);
    expect([...state.values()]).toEqual([
      {
        id: letter.id,
        at: at(1),
        topic: "dspex.requests",
        partition: 2,
        offset: "7",
        consumer: "dspex-pipeline",
        reason: "not JSON",
        original: "{oops",
        encoding: "utf8",
      },
    ]);
  });
});
