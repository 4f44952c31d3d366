import { describe, expect, it } from "vitest";
import {
  completed,
  failed,
  lmError,
  ofType,
  only,
  program,
  registered,
  requested,
  scenario,
  stage,
  T0,
  types,
  variableChanged,
} from "./fixtures.ts";

/** retrieve → (summarize ‖ classify) → answer */
const diamond = program(
  "diamond",
  [
    stage("retrieve", {
      runtime: "native",
      module: "retrieve",
      inputs: ["question"],
      outputs: ["passages: list[str]"],
      config: { corpus: ["Paris is the capital of France.", "Berlin is in Germany."], k: 1 },
    }),
    stage("summarize", { inputs: ["passages: list[str]"], outputs: ["summary"], dependsOn: ["retrieve"] }),
    stage("classify", { inputs: ["question"], outputs: ["label"], dependsOn: ["retrieve"] }),
    stage("answer", {
      inputs: ["summary", "label"],
      outputs: ["answer"],
      dependsOn: ["summarize", "classify"],
    }),
  ],
  { answer: "answer.answer", label: "classify.label" },
);

const chain = program(
  "chain",
  [
    stage("first", { inputs: ["question"], outputs: ["draft"] }),
    stage("second", { inputs: ["draft"], outputs: ["answer"], dependsOn: ["first"] }),
  ],
  { answer: "second.answer", draft: "first.draft" },
);

describe("coordinator", () => {
  it("runs a native stage in-process and dispatches the independent stages after it in parallel", () => {
    const emitted = scenario({}, [registered(diamond)]).when(
      requested("r1", "diamond", { question: "capital of France?" }),
    );
    expect(types(emitted)).toEqual([
      "ExecutionStarted",
      "StageCompleted",
      "MetricRecorded",
      "StepDispatched",
      "StepDispatched",
    ]);
    expect(only(emitted, "ExecutionStarted").data.levels).toEqual([
      ["retrieve"],
      ["summarize", "classify"],
      ["answer"],
    ]);
    expect(only(emitted, "StageCompleted").data.outputs).toEqual({
      passages: ["Paris is the capital of France."],
    });
    const steps = ofType(emitted, "StepDispatched");
    expect(steps.map((s) => s.data.stageId)).toEqual(["summarize", "classify"]);
    expect(steps[0]!.data.inputs).toEqual({ passages: ["Paris is the capital of France."] });
  });

  it("dispatches the next stage once all its dependencies completed, then completes with the program outputs", () => {
    const s = scenario({}, [registered(diamond)]);
    const [summarize, classify] = ofType(
      s.when(requested("r1", "diamond", { question: "q" })),
      "StepDispatched",
    );
    expect(types(s.when(completed(summarize!, { summary: "S" }), T0 + 10))).toEqual([
      "StageCompleted",
      "MetricRecorded",
    ]);
    const afterClassify = s.when(completed(classify!, { label: "geo" }), T0 + 20);
    const answer = only(afterClassify, "StepDispatched");
    expect(answer.data).toMatchObject({ stageId: "answer", inputs: { summary: "S", label: "geo" } });
    const end = s.when(completed(answer, { answer: "Paris" }), T0 + 50);
    const result = only(end, "ExecutionCompleted");
    expect(result.data.outputs).toEqual({ answer: "Paris", label: "geo" });
    expect(result.data.durationMs).toBe(50);
    expect(result.data.stages.answer).toEqual({ outputs: { answer: "Paris" }, durationMs: 30, attempts: 1 });
    expect(result.data.usage).toEqual({ calls: 3, promptTokens: 9, completionTokens: 6 });
    expect(ofType(end, "MetricRecorded").map((m) => m.data.name)).toEqual([
      "stage.duration_ms",
      "execution.duration_ms",
    ]);
    expect(s.state().coordinator.executions.size).toBe(0);
  });

  it("records what a step's calls cost, per stage and model, when the provider says", () => {
    const s = scenario({}, [registered(chain)]);
    const first = only(s.when(requested("r1", "chain", { question: "q" })), "StepDispatched");
    const paid = completed(first, { draft: "D" });
    const calls = [0.002, 0.0005].map((cost) => ({
      model: first.data.lm.model,
      latencyMs: 3,
      cost,
      promptTokens: 0,
      completionTokens: 0,
    }));
    const out = s.when({ ...paid, data: { ...paid.data, lmCalls: calls } }, T0 + 10);
    const cost = ofType(out, "MetricRecorded").find((m) => m.data.name === "stage.cost_usd")!;
    expect(cost.data).toMatchObject({ unit: "USD", labels: { stage: "first", model: first.data.lm.model } });
    expect(cost.data.value).toBeCloseTo(0.0025);
    const free = only(s.when(requested("r2", "chain", { question: "q" })), "StepDispatched");
    const names = ofType(s.when(completed(free, { draft: "D" }), T0 + 20), "MetricRecorded").map(
      (m) => m.data.name,
    );
    expect(names).toContain("stage.duration_ms");
    expect(names).not.toContain("stage.cost_usd");
  });

  it("retries a retryable failure after exponential backoff, then succeeds", () => {
    const policy = { backoffMs: 100, maxRetries: 2 };
    const s = scenario({}, [registered(chain)]);
    const first = only(s.when(requested("r1", "chain", { question: "q" }, { policy })), "StepDispatched");
    const failure = s.when(failed(first, lmError), T0 + 5);
    expect(only(failure, "StageFailed").data).toMatchObject({ attempt: 0, willRetry: true });
    expect(ofType(failure, "StepDispatched")).toEqual([]);
    expect(s.nextTickAt()).toBe(T0 + 105);
    expect(s.tick(T0 + 104)).toEqual([]);
    const due = only(s.tick(T0 + 105), "StageScheduled");
    expect(due.data).toMatchObject({ stageId: "first", attempt: 1 });
    expect(s.tick(T0 + 106)).toEqual([]);
    const retry = only(s.when(due, T0 + 106), "StepDispatched");
    expect(retry.data.attempt).toBe(1);
    expect(retry.id).not.toBe(first.id);
    const second = s.when(failed(retry, lmError), T0 + 110);
    expect(only(second, "StageFailed").data.willRetry).toBe(true);
    expect(s.nextTickAt()).toBe(T0 + 310);
  });

  it("fails fast after the last retry, keeping every completed stage's output as partial results", () => {
    const policy = { backoffMs: 0, maxRetries: 1 };
    const s = scenario({}, [registered(chain)]);
    const first = only(s.when(requested("r1", "chain", { question: "q" }, { policy })), "StepDispatched");
    const second = only(s.when(completed(first, { draft: "D" })), "StepDispatched");
    const retry = only(s.when(failed(second, lmError)), "StepDispatched");
    expect(retry.data.attempt).toBe(1);
    const end = s.when(failed(retry, lmError), T0 + 9);
    expect(only(end, "StageFailed").data.willRetry).toBe(false);
    const result = only(end, "ExecutionFailed");
    expect(result.data).toMatchObject({ failedStage: "second", error: lmError });
    expect(result.data.partial).toEqual({ first: { outputs: { draft: "D" }, durationMs: 0, attempts: 1 } });
  });

  it("does not retry a non-retryable failure", () => {
    const s = scenario({}, [registered(chain)]);
    const first = only(s.when(requested("r1", "chain", { question: "q" })), "StepDispatched");
    const bad = { kind: "bad_request", message: "no such tool", retryable: false } as const;
    expect(types(s.when(failed(first, bad)))).toContain("ExecutionFailed");
  });

  it("with continue-on-error, runs the other branches, skips dependents, and fails with partial results", () => {
    const policy = { onError: "continue" as const, maxRetries: 0 };
    const s = scenario({}, [registered(diamond)]);
    const [summarize, classify] = ofType(
      s.when(requested("r1", "diamond", { question: "q" }, { policy })),
      "StepDispatched",
    );
    const afterFailure = s.when(failed(summarize!, lmError));
    expect(ofType(afterFailure, "StageFailed").map((f) => [f.data.stageId, f.data.error.kind])).toEqual([
      ["summarize", "lm_error"],
      ["answer", "cancelled"],
    ]);
    expect(ofType(afterFailure, "ExecutionFailed")).toEqual([]);
    const end = s.when(completed(classify!, { label: "geo" }));
    const result = only(end, "ExecutionFailed");
    expect(result.data.failedStage).toBe("summarize");
    expect(Object.keys(result.data.partial).sort()).toEqual(["classify", "retrieve"]);
  });

  it("times out a step that never answers, via the tick, and retries it", () => {
    const policy = { stepTimeoutMs: 1000, backoffMs: 0 };
    const s = scenario({}, [registered(chain)]);
    const first = only(s.when(requested("r1", "chain", { question: "q" }, { policy })), "StepDispatched");
    expect(s.tick(T0 + 999)).toEqual([]);
    const timeout = only(s.tick(T0 + 1000), "StepFailed");
    expect(timeout.data).toMatchObject({
      stepId: first.data.stepId,
      error: { kind: "timeout", retryable: true },
    });
    expect(s.tick(T0 + 1001)).toEqual([]);
    const retry = only(s.when(timeout, T0 + 1001), "StepDispatched");
    expect(retry.data.attempt).toBe(1);
    expect(s.when(completed(first, { draft: "late" }), T0 + 1002)).toEqual([]);
  });

  it("ignores results for attempts it no longer waits for, and redelivered results", () => {
    const s = scenario({}, [registered(chain)]);
    const first = only(s.when(requested("r1", "chain", { question: "q" })), "StepDispatched");
    const done = completed(first, { draft: "D" });
    expect(types(s.when(done))).toContain("StepDispatched");
    expect(s.when(done)).toEqual([]);
  });

  it("treats outputs that break the signature as a retryable invalid_output failure", () => {
    const s = scenario({}, [registered(chain)]);
    const first = only(
      s.when(requested("r1", "chain", { question: "q" }, { policy: { backoffMs: 0 } })),
      "StepDispatched",
    );
    const emitted = s.when(completed(first, { draft: 7 }));
    expect(only(emitted, "StageFailed").data.error).toEqual({
      kind: "invalid_output",
      message: "stage first returned invalid outputs: draft must be a string",
      retryable: true,
    });
    expect(only(emitted, "StepDispatched").data.attempt).toBe(1);
  });

  it("resolves variables at dispatch: the registry's latest value, request overrides winning, versions recorded", () => {
    const tuned = program(
      "tuned",
      [
        stage("answer", {
          inputs: ["question"],
          outputs: ["answer"],
          variables: [{ name: "instructions", spec: { kind: "text", maxLength: 100 }, initial: "Be brief." }],
        }),
      ],
      { answer: "answer.answer" },
      {
        variables: [
          { name: "model", spec: { kind: "module", choices: ["m-a", "m-b"] }, initial: "m-a" },
          { name: "temperature", spec: { kind: "float", min: 0, max: 1 }, initial: 0 },
        ],
      },
    );
    const s = scenario({}, [registered(tuned), variableChanged("tuned.temperature", 0.7, 3)]);
    const step = only(s.when(requested("r1", "tuned", { question: "q" })), "StepDispatched");
    expect(step.data.lm).toEqual({ model: "m-a", temperature: 0.7, maxTokens: 512 });
    expect(step.data.signature.instructions).toBe("Be brief.");
    expect(step.data.variableVersions).toEqual({
      "tuned.model": 1,
      "tuned.temperature": 3,
      "tuned.answer.instructions": 1,
    });
    const overridden = only(
      s.when(
        requested(
          "r2",
          "tuned",
          { question: "q" },
          { overrides: { "tuned.model": "m-b", "answer.instructions": "Long." } },
        ),
      ),
      "StepDispatched",
    );
    expect(overridden.data.lm.model).toBe("m-b");
    expect(overridden.data.signature.instructions).toBe("Long.");
    expect(overridden.data.variableVersions).toMatchObject({
      "tuned.model": 0,
      "tuned.answer.instructions": 0,
    });
  });

  it("fails a native stage whose template lacks a value, without retrying", () => {
    const templated = program(
      "templated",
      [
        stage("prompt", {
          runtime: "native",
          module: "template",
          inputs: ["question"],
          outputs: ["prompt"],
          config: { template: "Q: {question} ({missing})" },
        }),
      ],
      { prompt: "prompt.prompt" },
    );
    const emitted = scenario({}, [registered(templated)]).when(
      requested("r1", "templated", { question: "q" }),
    );
    expect(only(emitted, "ExecutionFailed").data.error).toEqual({
      kind: "bad_request",
      message: "template of stage prompt has no value for missing",
      retryable: false,
    });
  });
});

describe("adaptation: circuit breaker and fallback chain", () => {
  const routed = program(
    "routed",
    [stage("answer", { inputs: ["question"], outputs: ["answer"] })],
    { answer: "answer.answer" },
    {
      variables: [
        {
          name: "model",
          spec: { kind: "choice", choices: ["primary", "backup"], allowCustom: false },
          initial: "primary",
        },
      ],
    },
  );
  const config = { circuit: { failureThreshold: 2, windowMs: 1000, cooldownMs: 5000 } };
  const policy = { maxRetries: 0 };

  const failOnce = (s: ReturnType<typeof scenario>, id: string, now: number) => {
    const step = only(s.when(requested(id, "routed", { question: "q" }, { policy }), now), "StepDispatched");
    return { step, emitted: s.when(failed(step, lmError), now) };
  };

  it("opens after N failures in the window, reroutes to the next choice, half-opens after the cooldown and closes on success", () => {
    const s = scenario(config, [registered(routed)]);
    expect(types(failOnce(s, "r1", T0).emitted)).not.toContain("CircuitOpened");
    const opened = only(failOnce(s, "r2", T0 + 10).emitted, "CircuitOpened");
    expect(opened.data.circuit).toBe("primary");

    const whileOpen = s.when(requested("r3", "routed", { question: "q" }, { policy }), T0 + 20);
    expect(only(whileOpen, "StepRerouted").data).toMatchObject({ from: "primary", to: "backup" });
    expect(only(whileOpen, "StepDispatched").data.lm.model).toBe("backup");

    const probe = s.when(requested("r4", "routed", { question: "q" }, { policy }), T0 + 5010);
    expect(types(probe)).toContain("CircuitHalfOpened");
    const probeStep = only(probe, "StepDispatched");
    expect(probeStep.data.lm.model).toBe("primary");
    expect(
      only(s.when(completed(probeStep, { answer: "ok" }), T0 + 5020), "CircuitClosed").data.circuit,
    ).toBe("primary");
  });

  it("falls back to the next model at once when a call fails, and backs off once every model has failed", () => {
    const retrying = { maxRetries: 3, backoffMs: 100 };
    const s = scenario(config, [registered(routed)]);
    const first = only(
      s.when(requested("r1", "routed", { question: "q" }, { policy: retrying })),
      "StepDispatched",
    );
    expect(first.data.lm.model).toBe("primary");
    const fallback = s.when(failed(first, lmError), T0 + 5);
    expect(types(fallback)).not.toContain("CircuitOpened");
    expect(only(fallback, "StageScheduled").data).toMatchObject({
      attempt: 1,
      notBefore: new Date(T0 + 5).toISOString(),
    });
    expect(only(fallback, "StepRerouted").data).toMatchObject({
      from: "primary",
      to: "backup",
      reason: "fallback: primary failed attempt 0 of this stage",
    });
    const second = only(fallback, "StepDispatched");
    expect(second.data).toMatchObject({ attempt: 1, lm: { model: "backup" } });
    // Both models failed this stage: the next attempt waits for its backoff, then tries the chain again.
    const backedOff = s.when(failed(second, lmError), T0 + 10);
    expect(ofType(backedOff, "StepDispatched")).toEqual([]);
    expect(s.nextTickAt()).toBe(T0 + 10 + 200);
  });

  it("does not fall back on a failure that is not the model's (bad request)", () => {
    const s = scenario(config, [registered(routed)]);
    const first = only(
      s.when(requested("r1", "routed", { question: "q" }, { policy: { maxRetries: 3, backoffMs: 100 } })),
      "StepDispatched",
    );
    const after = s.when(
      failed(first, { kind: "invalid_output", message: "unparsable", retryable: true }),
      T0 + 5,
    );
    expect(ofType(after, "StepDispatched")).toEqual([]);
    expect(s.nextTickAt()).toBe(T0 + 105);
  });

  it("does not count failures outside the window", () => {
    const s = scenario(config, [registered(routed)]);
    failOnce(s, "r1", T0);
    expect(types(failOnce(s, "r2", T0 + 1500).emitted)).not.toContain("CircuitOpened");
  });

  it("reopens when the half-open probe fails", () => {
    const s = scenario(config, [registered(routed)]);
    failOnce(s, "r1", T0);
    failOnce(s, "r2", T0 + 1);
    const { emitted } = failOnce(s, "r3", T0 + 6000);
    expect(types(emitted)).toContain("CircuitOpened");
  });
});
