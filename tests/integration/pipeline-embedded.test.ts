import { filter, lastValueFrom, map, takeWhile, toArray } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import { startPipeline } from "../../processors/pipeline/pipeline.ts";
import type { RunningProcessor } from "../../processors/runtime/index.ts";
import { createClient, type ExecutionResult } from "../../streams/client.ts";
import { StepCompleted } from "../../streams/events/index.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { appendEvents, readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { backendsUnderTest, skippedHere } from "../support/backends.ts";
import { startTestExecutor } from "../support/test-executor.ts";
import { pipelineInputs, untilCaughtUp } from "../support/waits.ts";
import { program, stage } from "../unit/processors/fixtures.ts";

const qa = program(
  "qa",
  [
    stage("retrieve", {
      runtime: "native",
      module: "retrieve",
      inputs: ["question"],
      outputs: ["passages: list[str]"],
      config: { corpus: ["Paris is the capital of France.", "Rome is in Italy."], k: 1 },
    }),
    stage("prompt", {
      runtime: "native",
      module: "template",
      inputs: ["question", "passages: list[str]"],
      outputs: ["context"],
      dependsOn: ["retrieve"],
      config: { template: "{passages}" },
    }),
    stage("classify", { inputs: ["question"], outputs: ["topic"] }),
    stage("answer", {
      inputs: ["question", "context"],
      outputs: ["answer"],
      dependsOn: ["prompt", "classify"],
    }),
  ],
  { answer: "answer.answer", topic: "classify.topic" },
);

/** A log whose `group` consumer dies before the first commit that would write a result: nothing of that batch is written. */
const crashingLog = (log: EventLog, group: string): EventLog => {
  let crashed = false;
  return new Proxy(log, {
    get(target, property, receiver) {
      if (property !== "consume") return Reflect.get(target, property, receiver);
      return (options: Parameters<EventLog["consume"]>[0], handler: Parameters<EventLog["consume"]>[1]) =>
        target.consume(options, (batch) =>
          handler(
            options.group !== group
              ? batch
              : {
                  ...batch,
                  commitWith: async (outputs) => {
                    const writesResult = outputs.some(
                      (o) => o.headers?.["dspex-type"] === "ExecutionCompleted",
                    );
                    if (writesResult && !crashed) {
                      crashed = true;
                      throw new Error("simulated crash before commit");
                    }
                    return batch.commitWith(outputs);
                  },
                },
          ),
        );
    },
  });
};

// Generous deadlines: on a loaded machine a Kafka read (a scratch consumer group each) takes seconds.
describe.each(backendsUnderTest)("pipeline on the $name log", { timeout: 120_000 }, (backend) => {
  if (skippedHere(backend)) return;
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  const setup = async (executorOptions: Parameters<typeof startTestExecutor>[1] = {}) => {
    const log = await openLog(backend.freshConfig());
    cleanups.push(() => log.close());
    const client = createClient(log);
    await client.register(qa);
    const pipeline = startPipeline(log);
    cleanups.push(() => pipeline.stop());
    await pipeline.ready;
    const executor = startTestExecutor(log, executorOptions);
    cleanups.push(() => executor.stop());
    return { log, client, pipeline, executor };
  };

  const resultsOf = async (log: EventLog) =>
    (await readEvents(log, Topics.results)).flatMap((r) =>
      "event" in r ? [r.event as ExecutionResult] : [],
    );

  it("runs a request end to end: native and DSPy stages mixed, parallel where independent", async () => {
    const { client, executor } = await setup();
    const result = await client.execute(
      { programId: "qa", inputs: { question: "capital of France?" } },
      { timeoutMs: 10_000 },
    );
    expect(result.type).toBe("ExecutionCompleted");
    if (result.type !== "ExecutionCompleted") return;
    expect(result.data.outputs).toEqual({ answer: "answer from answer", topic: "topic from classify" });
    expect(result.data.stages.prompt!.outputs).toEqual({ context: "Paris is the capital of France." });
    expect(executor.steps.map((s) => s.stageId)).toEqual(["classify", "answer"]);
    expect(executor.steps[1]!.inputs).toEqual({
      question: "capital of France?",
      context: "Paris is the capital of France.",
    });
  });

  it("rejects a request for an unknown program with a clear reason", async () => {
    const { client } = await setup();
    const result = await client.execute({ programId: "nope", inputs: {} }, { timeoutMs: 10_000 });
    expect(result.type).toBe("ExecutionRejected");
    expect(result.data).toMatchObject({ code: "unknown_program" });
  });

  it("retries a failed step and reports the attempts", async () => {
    const { client } = await setup({
      behave: (step) =>
        step.stageId === "classify" && step.attempt === 0
          ? { error: { kind: "rate_limit", message: "slow down", retryable: true } }
          : {},
    });
    const result = await client.execute(
      { programId: "qa", inputs: { question: "q" }, policy: { backoffMs: 10 } },
      { timeoutMs: 10_000 },
    );
    expect(result.type).toBe("ExecutionCompleted");
    if (result.type === "ExecutionCompleted") expect(result.data.stages.classify!.attempts).toBe(2);
  });

  it("times out a step that never answers and retries it", async () => {
    const { client, executor } = await setup({
      behave: (step) => (step.stageId === "answer" && step.attempt === 0 ? { latencyMs: 60_000 } : {}),
    });
    const result = await client.execute(
      { programId: "qa", inputs: { question: "q" }, policy: { stepTimeoutMs: 200, backoffMs: 0 } },
      { timeoutMs: 10_000 },
    );
    expect(result.type).toBe("ExecutionCompleted");
    expect(executor.steps.filter((s) => s.stageId === "answer").map((s) => s.attempt)).toEqual([0, 1]);
  });

  it("keeps partial results when a stage keeps failing", async () => {
    const { client } = await setup({
      behave: (step) =>
        step.stageId === "answer" ? { error: { kind: "lm_error", message: "down", retryable: true } } : {},
    });
    const result = await client.execute(
      { programId: "qa", inputs: { question: "q" }, policy: { maxRetries: 1, backoffMs: 0 } },
      { timeoutMs: 10_000 },
    );
    expect(result.type).toBe("ExecutionFailed");
    if (result.type !== "ExecutionFailed") return;
    expect(result.data.failedStage).toBe("answer");
    expect(Object.keys(result.data.partial).sort()).toEqual(["classify", "prompt", "retrieve"]);
  });

  it("streams progress: every stage's completion, each after the stages it depends on", async () => {
    const { client } = await setup();
    const { requestId } = await client.publish({ programId: "qa", inputs: { question: "q" } });
    const stages = await lastValueFrom(
      client.progress$(requestId, { from: "beginning" }).pipe(
        filter((event) => event.type === "StageCompleted"),
        map((event) => (event.type === "StageCompleted" ? event.data.stageId : "")),
        takeWhile((stageId) => stageId !== "answer", true),
        toArray(),
      ),
    );
    expect([...stages].sort()).toEqual(["answer", "classify", "prompt", "retrieve"]);
    const at = (stage: string) => stages.indexOf(stage);
    expect(at("prompt")).toBeGreaterThan(at("retrieve"));
    expect(at("answer")).toBe(3);
  });

  it("drops a redelivered step result: exactly one result", async () => {
    const { log, client } = await setup({
      behave: (step) => (step.stageId === "answer" ? { latencyMs: 60_000 } : {}),
    });
    const { requestId } = await client.publish({ programId: "qa", inputs: { question: "q" } });
    let answerStep: StepCompletedInput | undefined;
    while (!answerStep) {
      const steps = (await readEvents(log, Topics.steps)).flatMap((r) => ("event" in r ? [r.event] : []));
      answerStep = steps.find(
        (e) => e.type === "StepDispatched" && e.data.stageId === "answer",
      ) as StepCompletedInput;
      await new Promise((wake) => setTimeout(wake, 20));
    }
    const completedOnce = StepCompleted.create({
      stream: `execution-${answerStep.data.executionId}`,
      key: answerStep.key, // a result goes where its step went (the task that holds the execution)
      data: {
        ...refOf(answerStep),
        outputs: { answer: "Paris" },
        usage: { calls: 1, promptTokens: 1, completionTokens: 1 },
        latencyMs: 1,
      },
    });
    await appendEvents(log, [completedOnce, completedOnce]);
    await appendEvents(log, [completedOnce]);
    await client.publish({ programId: "qa", inputs: { question: "q" }, requestId });
    await waitFor(async () => (await resultsOf(log)).length >= 1);
    await untilCaughtUp(log, pipelineInputs);
    const results = await resultsOf(log);
    expect(results.map((r) => r.type)).toEqual(["ExecutionCompleted"]);
  });

  it("exactly once across a crash mid-batch: the restarted pipeline rebuilds its state and writes one result per request", async () => {
    const log = await openLog(backend.freshConfig());
    cleanups.push(() => log.close());
    const client = createClient(log);
    await client.register(qa);
    const executor = startTestExecutor(log);
    cleanups.push(() => executor.stop());
    const crashing = startPipeline(crashingLog(log, "dspex-pipeline"));
    const requests = await Promise.all(
      Array.from({ length: 5 }, (_, i) => client.publish({ programId: "qa", inputs: { question: `q${i}` } })),
    );
    await expect(crashing.done).rejects.toThrow("simulated crash before commit");
    const restarted: RunningProcessor<unknown> = startPipeline(log);
    cleanups.push(() => restarted.stop());
    await waitFor(async () => (await resultsOf(log)).length >= requests.length);
    await untilCaughtUp(log, { ...pipelineInputs, "dspex-test-executor": [Topics.steps] });
    const results = await resultsOf(log);
    expect(results.map((r) => r.type)).toEqual(requests.map(() => "ExecutionCompleted"));
    expect(new Set(results.map((r) => r.data.requestId))).toEqual(new Set(requests.map((r) => r.requestId)));
    const dispatched = (await readEvents(log, Topics.steps)).map((r) => ("event" in r ? r.event.id : ""));
    expect(new Set(dispatched).size).toBe(dispatched.length);
  });

  it("resumes an execution after a restart between dispatch and result", async () => {
    const log = await openLog(backend.freshConfig());
    cleanups.push(() => log.close());
    const client = createClient(log);
    await client.register(qa);
    const pipeline = startPipeline(log);
    await pipeline.ready;
    const { requestId } = await client.publish({ programId: "qa", inputs: { question: "q" } });
    await waitFor(async () => (await readEvents(log, Topics.steps)).length >= 1);
    await pipeline.stop();
    // No executor ran yet: the step has no result, so the restart falls between its dispatch and its result.
    expect(await readEvents(log, Topics.stepResults)).toEqual([]);
    const restarted = startPipeline(log);
    cleanups.push(() => restarted.stop());
    await restarted.ready;
    const executor = startTestExecutor(log);
    cleanups.push(() => executor.stop());
    const result = await firstResult(client, requestId);
    expect(result.type).toBe("ExecutionCompleted");
    expect(executor.steps.map((s) => s.stageId)).toEqual(["classify", "answer"]);
  });
});

type StepCompletedInput = {
  key: string;
  data: { stepId: string; executionId: string; stageId: string; attempt: number };
};
const refOf = (step: StepCompletedInput) => ({
  stepId: step.data.stepId,
  executionId: step.data.executionId,
  stageId: step.data.stageId,
  attempt: step.data.attempt,
});

const waitFor = async (condition: () => Promise<boolean>, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((wake) => setTimeout(wake, 20));
  }
};

const firstResult = (client: ReturnType<typeof createClient>, requestId: string) =>
  new Promise<{ type: string }>((done, fail) => {
    const timer = setTimeout(() => fail(new Error("no result")), 60_000);
    const subscription = client.results$(requestId, { from: "beginning" }).subscribe((result) => {
      clearTimeout(timer);
      subscription.unsubscribe();
      done(result);
    });
  });
