/**
 * A program's constraints, kept end to end: a request whose overrides break one is rejected with the reason
 * (the requester hears back), and a random search through the deployment's processors never tries a
 * configuration that breaks one. Embedded log, real Python workers (the test LM), the public entry point.
 */
import { afterAll, describe, expect, it } from "vitest";
import { dspy, type JsonRecord, program, v } from "../../index.ts";
import { findPython } from "../../processors/workers/python.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { dspexHere } from "../support/dspex-here.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the constraints test: ${found.reason}`);

const examples = (split: string) =>
  ["one", "two", "three"].map((word) => ({
    id: `${split}-${word}`,
    inputs: { question: word },
    expected: { answer: word },
  }));

describe.skipIf(!found.python)("constraints (embedded log, Python workers)", () => {
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it("a request that breaks one is rejected with the reason; a search never tries one that does", async () => {
    const { dspex, stop } = await dspexHere({ processors: ["pipeline", "evaluation", "registry"] });
    stops.push(stop);
    const echo = await dspex.register(
      program("cool-echo")
        .input("question: str")
        .variable("model", v.model(["dspex/test"]))
        .stage("answer", dspy.predict("question -> answer"), {
          variables: { temperature: v.temperature(0.2) },
        })
        .constraint("cool answers", { require: { variable: "answer.temperature", op: "<=", than: 0.5 } }),
    );

    const hot = await dspex.execute({
      program: echo,
      inputs: { question: "one" },
      overrides: { "cool-echo.answer.temperature": 1.5 },
    });
    expect(hot.type).toBe("ExecutionRejected");
    if (hot.type === "ExecutionRejected")
      expect(hot.data.reason).toBe(
        "the configuration of cool-echo breaks its constraints: cool answers: answer.temperature (1.5) must be <= 0.5",
      );

    const result = await dspex.optimize({
      programId: "cool-echo",
      optimizer: "random",
      trainset: examples("train"),
      devset: examples("dev"),
      metric: { name: "exact_match", field: "answer", params: {} },
      budget: { maxTrials: 6 },
      params: { trials: 6 },
      seed: 3,
    });
    const tried = (await readEvents(dspex.log, Topics.optimizations)).flatMap((r) =>
      "event" in r &&
      r.event.type === "TrialProposed" &&
      r.event.data.optimizationId === result.optimizationId &&
      r.event.data.config.phase === "search"
        ? [Number((r.event.data.config.overrides as JsonRecord)["cool-echo.answer.temperature"])]
        : [],
    );
    expect(tried).toHaveLength(6);
    expect(tried.every((t) => t >= 0 && t <= 0.5)).toBe(true);
  });
});
