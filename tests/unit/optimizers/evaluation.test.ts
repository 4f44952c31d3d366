import { describe, expect, it } from "vitest";
import {
  emptyEvaluations,
  evaluationProcessor,
  rememberedCompletions,
} from "../../../processors/evaluation/evaluation.ts";
import { metricRegistry } from "../../../processors/evaluation/metrics.ts";
import type { Processor } from "../../../processors/runtime/index.ts";
import type { Envelope } from "../../../streams/envelope.ts";
import {
  type DspexEvent,
  EvaluationRequested,
  ExecutionCompleted,
  ExecutionFailed,
} from "../../../streams/events/index.ts";

const ctx = {
  now: 0,
  source: { topic: "t", partition: 0, offset: 0 },
  key: "k",
  consumer: "test",
  table: undefined,
};

const request = (concurrency: number, metric = "exact_match", ids = ["a", "b", "c", "d", "e"]) =>
  EvaluationRequested.create({
    stream: "evaluation-e1",
    key: "e1",
    data: {
      evaluationId: "e1",
      programId: "p",
      examples: ids.map((id) => ({
        id,
        inputs: { q: id },
        expected: { answer: id.toUpperCase() },
      })),
      metric: { name: metric, field: "answer" },
      overrides: { "p.s.demos": [] },
      concurrency,
      failureScore: -1,
    },
  });

const completed = (exampleId: string, answer: string, requestId = `r-${exampleId}`) =>
  ExecutionCompleted.create({
    stream: "x",
    key: requestId,
    data: {
      requestId,
      executionId: `x-${exampleId}`,
      programId: "p",
      outputs: { answer },
      stages: {},
      durationMs: 1,
      usage: { calls: 1, promptTokens: 10, completionTokens: 2 },
      evaluationId: "e1",
      exampleId,
    },
  });

const failed = (exampleId: string) =>
  ExecutionFailed.create({
    stream: "x",
    key: `r-${exampleId}`,
    data: {
      requestId: `r-${exampleId}`,
      executionId: `x-${exampleId}`,
      programId: "p",
      failedStage: "s",
      error: { kind: "timeout", message: "slow", retryable: true },
      partial: {},
      durationMs: 1,
      usage: { calls: 1, promptTokens: 0, completionTokens: 0 },
      evaluationId: "e1",
      exampleId,
    },
  });

const drive = <S>(processor: Processor<S>, events: Envelope[]) => {
  let state = processor.initialState;
  const emitted: Envelope[][] = [];
  for (const event of events) {
    const out = processor.handle(state, event as DspexEvent, ctx);
    state = out.state;
    emitted.push(out.emit);
  }
  return { state, emitted };
};

describe("evaluation processor", () => {
  const processor = evaluationProcessor(metricRegistry());

  it("never has more than `concurrency` executions in flight, and ids are deterministic", () => {
    const requested = request(2);
    const { emitted } = drive(processor, [requested, completed("a", "A"), completed("b", "B")]);
    expect(emitted.map((e) => e.length)).toEqual([2, 1, 1]);
    const again = drive(processor, [requested]).emitted[0]!;
    expect(again.map((e) => e.id)).toEqual(emitted[0]!.map((e) => e.id));
    const sent = emitted.flat().map((e) => (e.data as { exampleId: string; overrides: unknown }).exampleId);
    expect(sent).toEqual(["a", "b", "c", "d"]);
    expect((emitted[0]![0]!.data as { overrides: unknown }).overrides).toEqual({ "p.s.demos": [] });
  });

  it("scores every example, failures at the failure score, and completes once", () => {
    const { emitted } = drive(processor, [
      request(5),
      completed("a", "A"),
      completed("b", "wrong"),
      failed("c"),
      completed("d", "d"),
      completed("d", "d"),
      completed("e", "E"),
      completed("e", "E"),
    ]);
    const done = emitted.flat().filter((e) => e.type === "EvaluationCompleted");
    expect(done).toHaveLength(1);
    const data = done[0]!.data as {
      score: number;
      errors: number;
      results: { exampleId: string; score: number }[];
      usage: { calls: number };
    };
    expect(data.results.map((r) => r.score)).toEqual([1, 0, -1, 1, 1]);
    expect(data.score).toBeCloseTo(2 / 5);
    expect(data.errors).toBe(1);
    expect(data.usage.calls).toBe(5);
  });

  it("records a metric that throws as the example's error, at the failure score, and counts it", () => {
    const picky = evaluationProcessor(
      metricRegistry({
        picky: (p) => {
          if (p.answer === "B") throw new Error("cannot judge B");
          return p.answer === "A" ? 1 : 0;
        },
      }),
    );
    const { emitted } = drive(picky, [
      request(5, "picky"),
      ...["a", "b", "c", "d", "e"].map((id) => completed(id, id.toUpperCase())),
    ]);
    const data = emitted.flat().find((e) => e.type === "EvaluationCompleted")!.data as {
      errors: number;
      results: { exampleId: string; score: number; error?: string }[];
    };
    expect(data.results.map((r) => r.score)).toEqual([1, -1, 0, 0, 0]);
    expect(data.results[1]!.error).toBe("metric picky threw: cannot judge B");
    expect(data.results.filter((r) => r.error !== undefined)).toHaveLength(1);
    expect(data.errors).toBe(1);
  });

  it("fails every example of an evaluation with an unknown metric, dropping none", () => {
    const { emitted, state } = drive(processor, [request(2, "nope")]);
    const done = emitted.flat();
    expect(done.map((e) => e.type)).toEqual(["EvaluationCompleted"]);
    expect((done[0]!.data as { errors: number }).errors).toBe(5);
    expect(state).not.toEqual(emptyEvaluations);
  });

  it("forgets a completed evaluation's examples and results, but not that it ran: a repeated request is ignored", () => {
    const requested = request(5);
    const { state, emitted } = drive(processor, [
      requested,
      ...["a", "b", "c", "d", "e"].map((id) => completed(id, id.toUpperCase())),
    ]);
    expect(emitted.flat().filter((e) => e.type === "EvaluationCompleted")).toHaveLength(1);
    expect(state).toEqual({ evaluations: {}, completed: ["e1"] });
    expect(processor.handle(state, requested as DspexEvent, ctx).emit).toEqual([]);
  });

  it(`remembers the last ${rememberedCompletions} completed evaluations, oldest forgotten first`, () => {
    let state = processor.initialState;
    for (let i = 0; i <= rememberedCompletions; i++) {
      const refused = { ...request(1, "nope"), data: { ...request(1, "nope").data, evaluationId: `e${i}` } };
      state = processor.handle(state, refused as DspexEvent, ctx).state;
    }
    expect(state.completed).toHaveLength(rememberedCompletions);
    expect(state.completed[0]).toBe("e1");
    expect(state.completed.at(-1)).toBe(`e${rememberedCompletions}`);
  });

  it("refuses examples that share an id, failing each with the reason (their results could not be told apart)", () => {
    const { emitted } = drive(processor, [request(2, "exact_match", ["a", "b", "a"])]);
    const done = emitted.flat();
    expect(done.map((e) => e.type)).toEqual(["EvaluationCompleted"]);
    const data = done[0]!.data as { errors: number; results: { exampleId: string; error?: string }[] };
    expect(data.results.map((r) => r.exampleId)).toEqual(["a", "b", "a"]);
    expect(data.errors).toBe(3);
    expect(data.results[0]!.error).toMatch(/example id "a" is given to more than one example/);
  });
});

describe("metrics", () => {
  const metrics = metricRegistry({ length_ok: (p) => (String(p.answer).length < 5 ? 1 : 0) });
  const score = (name: string, answer: unknown, expected: unknown, params = {}) =>
    metrics.score({ name, field: "answer", params }, { answer } as never, { answer: expected } as never);

  it("exact match normalizes case, punctuation and articles", () => {
    expect(score("exact_match", "The Paris!", "paris")).toBe(1);
    expect(score("exact_match", "Lyon", "paris")).toBe(0);
    expect(score("exact_match", "lyon", ["paris", "Lyon"])).toBe(1);
  });

  it("f1 counts shared tokens", () => {
    expect(score("f1", "red big house", "big red barn")).toBeCloseTo(2 / 3);
    expect(score("f1", "nothing", "big red barn")).toBe(0);
  });

  it("contains and numeric tolerance", () => {
    expect(score("contains", "the answer is Paris.", "paris")).toBe(1);
    expect(score("numeric", "about 3.14", Math.PI, { tolerance: 0.01 })).toBe(1);
    expect(score("numeric", "1,000", 1000)).toBe(1);
    expect(score("numeric", "3", 4, { relative: 0.1 })).toBe(0);
  });

  it("a metric that gives no number scores the failure score and says so", () => {
    const odd = metricRegistry({ words: () => "good" as never });
    expect(odd.judge({ name: "words", field: "answer", params: {} }, {}, {}, -1)).toEqual({
      score: -1,
      error: 'metric words gave "good", not a number',
    });
  });

  it("user metrics by name; unknown names are refused", () => {
    expect(score("length_ok", "abc", "")).toBe(1);
    expect(() => score("nope", "a", "a")).toThrow(/unknown metric "nope"/);
  });
});
