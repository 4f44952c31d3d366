import { describe, expect, it } from "vitest";
import { only, program, registered, requested, scenario, stage, types } from "./fixtures.ts";

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

  it("given the in-flight limit is reached, when one more request arrives, then it is rejected as saturated", () => {
    const s = scenario({ intake: { maxInFlight: 2 } }, [registered(qa)]);
    s.when(requested("r1", "qa", { question: "a" }));
    s.when(requested("r2", "qa", { question: "b" }));
    const rejected = only(s.when(requested("r3", "qa", { question: "c" })), "ExecutionRejected");
    expect(rejected.data.code).toBe("saturated");
    expect(rejected.data.reason).toBe("saturated: 2 executions in flight, the limit is 2; retry later");
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

  it("given a program whose stages form a cycle, then its registration is dead-lettered and requests are refused", () => {
    const cyclic = program(
      "loop",
      [
        stage("a", { inputs: ["question"], outputs: ["x"], dependsOn: ["b"] }),
        stage("b", { inputs: ["x"], outputs: ["question"], dependsOn: ["a"] }),
      ],
      { out: "a.x" },
    );
    const s = scenario();
    const letter = only(s.when(registered(cyclic)), "DeadLettered");
    expect(letter.data.reason).toBe("program cannot run: stages form a cycle: a → b → a");
    expect(only(s.when(requested("r1", "loop", { question: "q" })), "ExecutionRejected").data.reason).toBe(
      "program loop cannot run: stages form a cycle: a → b → a",
    );
  });

  it("gives the same ids for a redelivered request (deterministic)", () => {
    const request = requested("r1", "qa", { question: "hi" });
    const first = scenario({}, [registered(qa)]).when(request);
    const again = scenario({}, [registered(qa)]).when(request);
    expect(again.map((e) => e.id)).toEqual(first.map((e) => e.id));
  });
});
