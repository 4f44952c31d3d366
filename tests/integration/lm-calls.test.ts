/**
 * LM call records: a step run by the Python workers says in its StepCompleted what the model saw and said
 * (messages, completion, tokens, latency, model, cost); with `trace.lmCalls: "usage"` in the config the
 * workers keep only the usage. Real Python workers (the test LM), the embedded log, the public entry point.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type Dspex, dspy, type EventOf, program, v } from "../../index.ts";
import { findPython } from "../../processors/workers/python.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { temporaryFolder } from "../support/cleanup.ts";
import { dspexHere } from "../support/dspex-here.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the LM call records test: ${found.reason}`);

const model = "dspex/test?latency_ms=10";
const question = "What is the capital of France?";

const qa = program("lm-calls-qa")
  .input("question: str")
  .variable("model", v.model([model]))
  .stage("answer", dspy.predict("question -> answer"));

/** dspex here, on a fresh embedded log, with `config` as its dspex.config.json. */
const withConfig = (config: object) => {
  const folder = temporaryFolder("dspex-lm-calls-");
  writeFileSync(join(folder, "dspex.config.json"), JSON.stringify(config));
  return dspexHere({
    log: { backend: "embedded", log: join(folder, "log.db"), config: join(folder, "dspex.config.json") },
    processors: ["pipeline"],
  });
};

/** The execution's answer and the StepCompleted its stage got from the workers. */
const answerAndStep = async (dspex: Dspex) => {
  const result = await dspex.execute(
    { program: await dspex.register(qa), inputs: { question } },
    { timeoutMs: 120_000 },
  );
  if (result.type !== "ExecutionCompleted") throw new Error(`not completed: ${JSON.stringify(result)}`);
  const completed = (await readEvents(dspex.log, Topics.stepResults)).flatMap((r) =>
    "event" in r && r.event.type === "StepCompleted" && r.event.data.executionId === result.data.executionId
      ? [r.event as EventOf<"StepCompleted">]
      : [],
  );
  expect(completed).toHaveLength(1);
  return { answer: result.data.outputs.answer, step: completed[0]!.data };
};

describe.skipIf(!found.python)("LM call records (embedded log, Python workers)", () => {
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it("a step's StepCompleted holds each call's prompt, completion, tokens, latency, model and cost", async () => {
    const { dspex, stop } = await withConfig({});
    stops.push(stop);
    const { answer, step } = await answerAndStep(dspex);
    expect(step.lmCalls).toHaveLength(1);
    const [call] = step.lmCalls;
    expect(call!.model).toBe(model);
    expect(call!.messages!.map((m) => m.role)).toEqual(["system", "user"]);
    expect(call!.messages![1]!.content).toContain(`[[ ## question ## ]]\n${question}`);
    expect(call!.completion).toContain(`[[ ## answer ## ]]\n${answer}`);
    expect(call!.promptTokens).toBe(step.usage.promptTokens);
    expect(call!.completionTokens).toBe(step.usage.completionTokens);
    expect(call!.promptTokens).toBeGreaterThan(0);
    expect(call!.latencyMs).toBeGreaterThanOrEqual(10);
    expect(call!.latencyMs).toBeLessThanOrEqual(step.latencyMs);
    expect(call!.cost).toBe(0);
  }, 180_000);

  it('with trace.lmCalls "usage" the workers drop the messages and completion and keep the tokens', async () => {
    const { dspex, stop } = await withConfig({ trace: { lmCalls: "usage" } });
    stops.push(stop);
    expect(dspex.config.trace.lmCalls).toBe("usage");
    const { step } = await answerAndStep(dspex);
    expect(step.lmCalls).toHaveLength(1);
    const [call] = step.lmCalls;
    expect(call).not.toHaveProperty("messages");
    expect(call).not.toHaveProperty("completion");
    expect(call).toMatchObject({
      model,
      promptTokens: step.usage.promptTokens,
      completionTokens: step.usage.completionTokens,
    });
    expect(call!.promptTokens).toBeGreaterThan(0);
    expect(JSON.stringify(step.lmCalls)).not.toContain(question);
  }, 180_000);
});
