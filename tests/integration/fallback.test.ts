/**
 * Fallback per call: a step whose LM call fails (the test LM told to be unavailable, as a provider that is
 * down) is sent to the next model of `v.model([...])` at once — not after its backoff, and without waiting
 * for the circuit to open — with a StepRerouted saying why. Real Python workers, the embedded log, the
 * public entry point.
 */
import { afterAll, describe, expect, it } from "vitest";
import { type DspexEvent, dspy, program, v } from "../../index.ts";
import { findPython } from "../../processors/workers/python.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { dspexHere } from "../support/dspex-here.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the fallback test: ${found.reason}`);

const down = "dspex/test?unavailable=1";
const up = "dspex/test";

describe.skipIf(!found.python)("fallback per call (embedded log, Python workers)", () => {
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it("a call that fails on the chosen model goes to the next one at once, with the reason", async () => {
    const { dspex, stop } = await dspexHere({ processors: ["pipeline"] });
    stops.push(stop);
    const qa = await dspex.register(
      program("fallback-qa")
        .input("question: str")
        .variable("model", v.model([down, up]))
        .stage("answer", dspy.predict("question -> answer")),
    );

    // A backoff far longer than the test: only a fallback at once lets the request finish.
    const result = await dspex.execute(
      {
        program: qa,
        inputs: { question: "Capital of France?" },
        policy: { maxRetries: 2, backoffMs: 3_600_000 },
      },
      { timeoutMs: 120_000 },
    );
    expect(result.type).toBe("ExecutionCompleted");
    if (result.type !== "ExecutionCompleted") return;
    expect(typeof result.data.outputs.answer).toBe("string");

    const records = [
      ...(await readEvents(dspex.log, Topics.executions)),
      ...(await readEvents(dspex.log, Topics.steps)),
    ];
    const events = records.flatMap((r) =>
      "event" in r && "executionId" in r.event.data && r.event.data.executionId === result.data.executionId
        ? [r.event as DspexEvent]
        : [],
    );
    const dispatched = events.flatMap((e) => (e.type === "StepDispatched" ? [e.data] : []));
    expect(dispatched.map((d) => [d.attempt, d.lm.model])).toEqual([
      [0, down],
      [1, up],
    ]);
    const stageFailed = events.flatMap((e) => (e.type === "StageFailed" ? [e.data] : []));
    expect(stageFailed).toHaveLength(1);
    expect(stageFailed[0]).toMatchObject({
      attempt: 0,
      willRetry: true,
      error: { kind: "lm_error", retryable: true },
    });
    expect(stageFailed[0]!.error.message).toContain("unavailable");
    const rerouted = events.flatMap((e) => (e.type === "StepRerouted" ? [e.data] : []));
    expect(rerouted).toEqual([
      {
        executionId: result.data.executionId,
        stageId: "answer",
        from: down,
        to: up,
        reason: `fallback: ${down} failed attempt 0 of this stage`,
      },
    ]);
    expect(events.some((e) => e.type === "CircuitOpened")).toBe(false);
  });
});
