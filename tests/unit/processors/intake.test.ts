import { describe, expect, it } from "vitest";
import { ExecutionRequested } from "../../../streams/events/index.ts";
import {
  completed,
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

const qa = program("qa", [stage("answer", { inputs: ["question"], outputs: ["answer"] })], {
  answer: "answer.answer",
});

describe("intake", () => {
  it("given no such program, when a request arrives, then it is rejected as unknown_program", () => {
    const emitted = scenario({}, [registered(qa)]).when(requested("r1", "nope", { question: "hi" }));
    const rejected = only(emitted, "ExecutionRejected");
    expect(rejected.data).toMatchObject({ requestId: "r1", code: "unknown_program" });
    expect(rejected.data.reason).toContain("unknown program nope (registered: qa)");
  });

  it("given a program, when the inputs are invalid, then a rejection with the reason and a dead letter", () => {
    const emitted = scenario({}, [registered(qa)]).when(requested("r1", "qa", { question: 42 }));
    expect(types(emitted)).toEqual(["ExecutionRejected", "DeadLettered"]);
    expect(only(emitted, "ExecutionRejected").data).toMatchObject({
      code: "invalid",
      reason: "invalid inputs for qa: question must be a string",
    });
    const letter = only(emitted, "DeadLettered");
    expect(letter.data.reason).toBe("invalid inputs for qa: question must be a string");
    expect(JSON.parse(letter.data.original).data.requestId).toBe("r1");
  });

  it("given a missing required input, then the rejection names it", () => {
    const emitted = scenario({}, [registered(qa)]).when(requested("r1", "qa", {}));
    expect(only(emitted, "ExecutionRejected").data.reason).toBe(
      "invalid inputs for qa: question is required",
    );
  });

  it("given the in-flight limit is reached, when more requests arrive, then they wait and the requests stop", () => {
    const s = scenario({ intake: { maxInFlight: 2 } }, [registered(qa)]);
    const first = only(s.when(requested("r1", "qa", { question: "a" })), "StepDispatched");
    s.when(requested("r2", "qa", { question: "b" }));
    expect(s.pausedTopics()).toEqual(["dspex.requests"]);
    expect(s.when(requested("r3", "qa", { question: "c" }))).toEqual([]);
    expect(s.when(requested("r4", "qa", { question: "d" }))).toEqual([]);
    expect(s.state().waiting.map((r) => r.data.requestId)).toEqual(["r3", "r4"]);
    // r1 finishes: r3, the oldest waiting, starts in the same step; r4 still waits.
    const next = s.when(completed(first, { answer: "A" }));
    expect(types(next)).toEqual([
      "StageCompleted",
      "MetricRecorded",
      "ExecutionCompleted",
      "MetricRecorded",
      "ExecutionStarted",
      "StepDispatched",
    ]);
    expect(only(next, "ExecutionStarted").data.requestId).toBe("r3");
    expect(s.state().waiting.map((r) => r.data.requestId)).toEqual(["r4"]);
    expect(s.pausedTopics()).toEqual(["dspex.requests"]);
  });

  it("given a request waiting past its deadline, when a slot frees, then it is rejected as saturated", () => {
    const s = scenario({ intake: { maxInFlight: 1 } }, [registered(qa)]);
    const first = only(s.when(requested("r1", "qa", { question: "a" })), "StepDispatched");
    s.when(requested("r2", "qa", { question: "b" }, { deadline: new Date(T0 + 1_000).toISOString() }));
    const next = s.when(completed(first, { answer: "A" }), T0 + 5_000);
    const rejected = only(next, "ExecutionRejected");
    expect(rejected.data).toMatchObject({ requestId: "r2", code: "saturated" });
    expect(rejected.data.reason).toContain("past its deadline");
    expect(s.pausedTopics()).toEqual([]);
  });

  it("given the operator opted in to rejection, when the limit is reached, then a request is rejected as saturated", () => {
    const s = scenario({ intake: { maxInFlight: 2, whenFull: "reject" } }, [registered(qa)]);
    s.when(requested("r1", "qa", { question: "a" }));
    s.when(requested("r2", "qa", { question: "b" }));
    const rejected = only(s.when(requested("r3", "qa", { question: "c" })), "ExecutionRejected");
    expect(rejected.data.code).toBe("saturated");
    expect(rejected.data.reason).toBe("saturated: 2 executions in flight, the limit is 2; retry later");
  });

  it("given a request stored under another key than its session, then it is published again under it", () => {
    const s = scenario({}, [registered(qa)]);
    const request = ExecutionRequested.create({
      stream: "request-r1",
      key: "some-other-key",
      data: { requestId: "r1", programId: "qa", inputs: { question: "hi" }, sessionId: "s1" },
    });
    const again = only(s.when(request), "ExecutionRequested");
    expect(again.key).toBe("s1");
    expect(again.data).toEqual(request.data);
    expect(again.causationId).toBe(request.id);
    expect(types(s.when(again))).toEqual(["ExecutionStarted", "StepDispatched"]);
  });

  it("given a valid request, then ExecutionStarted with the levels and a dispatched step keyed by session", () => {
    const emitted = scenario({}, [registered(qa)]).when(
      requested("r1", "qa", { question: "hi" }, { sessionId: "s9" }),
    );
    expect(types(emitted)).toEqual(["ExecutionStarted", "StepDispatched"]);
    expect(only(emitted, "ExecutionStarted").data).toMatchObject({
      requestId: "r1",
      levels: [["answer"]],
      sessionId: "s9",
    });
    const step = only(emitted, "StepDispatched");
    expect(step.key).toBe("s9");
    expect(step.data).toMatchObject({ sessionKey: "s9", inputs: { question: "hi" }, attempt: 0 });
  });

  it("given a request already taken in, when it is published again, then nothing happens", () => {
    const s = scenario({}, [registered(qa)]);
    s.when(requested("r1", "qa", { question: "hi" }));
    expect(s.when(requested("r1", "qa", { question: "hi" }))).toEqual([]);
  });

  it("given a program whose stages form a cycle, then requests for it are refused with the reason", () => {
    const cyclic = program(
      "loop",
      [
        stage("a", { inputs: ["question"], outputs: ["x"], dependsOn: ["b"] }),
        stage("b", { inputs: ["x"], outputs: ["question"], dependsOn: ["a"] }),
      ],
      { out: "a.x" },
    );
    const s = scenario({}, [registered(cyclic)]);
    expect(only(s.when(requested("r1", "loop", { question: "q" })), "ExecutionRejected").data.reason).toBe(
      "program loop cannot run: stages form a cycle: a → b → a",
    );
  });

  describe("a request for some outputs only", () => {
    const triage = program(
      "triage",
      [
        stage("classify", { inputs: ["question"], outputs: ["category"] }),
        stage("draft", { inputs: ["question", "category"], outputs: ["reply"], dependsOn: ["classify"] }),
      ],
      { category: "classify.category", reply: "draft.reply" },
    );

    it("runs only the stages those outputs need, and completes with them", () => {
      const s = scenario({}, [registered(triage)]);
      const first = s.when(requested("r1", "triage", { question: "q" }, { outputs: ["category"] }));
      const step = only(first, "StepDispatched");
      expect(step.data.stageId).toBe("classify");
      const done = s.when(completed(step, { category: "billing" }));
      expect(types(done)).not.toContain("StepDispatched");
      const result = only(done, "ExecutionCompleted");
      expect(result.data.outputs).toEqual({ category: "billing" });
      expect(Object.keys(result.data.stages)).toEqual(["classify"]);
    });

    it("rejects outputs the program does not have, naming them", () => {
      const s = scenario({}, [registered(triage)]);
      const rejected = only(
        s.when(requested("r1", "triage", { question: "q" }, { outputs: ["summary"] })),
        "ExecutionRejected",
      );
      expect(rejected.data).toMatchObject({ code: "invalid" });
      expect(rejected.data.reason).toBe(
        "invalid outputs for triage: triage has no output summary (its outputs: category, reply)",
      );
    });
  });
});

describe("intake: a program's constraints", () => {
  const guarded = program(
    "guarded",
    [stage("answer", { inputs: ["question"], outputs: ["answer"] })],
    { answer: "answer.answer" },
    {
      variables: [
        {
          name: "model",
          spec: { kind: "choice", choices: ["small", "large"], allowCustom: false },
          initial: "large",
        },
      ],
      stages: [
        {
          ...stage("answer", { inputs: ["question"], outputs: ["answer"] }),
          variables: [
            { name: "maxTokens", spec: { kind: "integer", min: 1, max: 4096, step: 1 }, initial: 1024 },
          ],
        },
      ],
      constraints: [
        {
          name: "small model, short answers",
          when: { model: ["small"] },
          require: { variable: "answer.maxTokens", op: "<=", than: 256 },
        },
      ],
    },
  );

  it("rejects a request whose overrides break a constraint, saying which and why", () => {
    const s = scenario({}, [registered(guarded)]);
    const emitted = s.when(
      requested("r1", "guarded", { question: "q" }, { overrides: { "guarded.model": "small" } }),
    );
    expect(only(emitted, "ExecutionRejected").data).toMatchObject({
      code: "invalid",
      reason:
        "the configuration of guarded breaks its constraints: small model, short answers: answer.maxTokens (1024) must be <= 256",
    });
    expect(types(emitted)).not.toContain("ExecutionStarted");
  });

  it("takes the registry's values into account, and runs a request that keeps the constraints", () => {
    const s = scenario({}, [registered(guarded), variableChanged("guarded.answer.maxTokens", 200, 1)]);
    const emitted = s.when(
      requested("r1", "guarded", { question: "q" }, { overrides: { "guarded.model": "small" } }),
    );
    expect(types(emitted)).toContain("ExecutionStarted");
    const large = s.when(
      requested("r2", "guarded", { question: "q" }, { overrides: { "answer.maxTokens": 4000 } }),
    );
    expect(types(large)).toContain("ExecutionStarted");
  });
});
