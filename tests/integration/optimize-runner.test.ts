import { afterEach, describe, expect, it } from "vitest";
import { metricRegistry } from "../../processors/evaluation/metrics.ts";
import { programEvaluator } from "../../processors/evaluation/port.ts";
import { runOptimization } from "../../processors/optimizers/driver.ts";
import { strategyFor } from "../../processors/optimizers/index.ts";
import { reflectionProgramId } from "../../processors/optimizers/reflect.ts";
import { reoptimizationProcessor } from "../../processors/optimizers/reoptimize.ts";
import {
  optimizationRequested,
  requestOptimization,
  startOptimizer,
} from "../../processors/optimizers/runner.ts";
import { setupOf } from "../../processors/optimizers/setup.ts";
import { readRegistry } from "../../processors/optimizers/stream.ts";
import { runProcessor } from "../../processors/runtime/index.ts";
import { registerProgram } from "../../programs/register.ts";
import { createClient } from "../../streams/client.ts";
import { type EventOf, MetricRecorded } from "../../streams/events/index.ts";
import { appendEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import {
  demosVariable,
  instructionsVariable,
  LABELS,
  labelProgram,
  labelTaskRun,
} from "../support/label-task.ts";
import { eventually, untilCaughtUp } from "../support/waits.ts";
import { eventsOn, labelBootstrap, labelSystem } from "./optimize-support.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const system = async () => {
  const s = await labelSystem();
  cleanups.push(s.stop);
  return s.log;
};

type RequestData = EventOf<"OptimizationRequested">["data"];

const request = (optimizationId: string, overrides: Partial<RequestData> = {}): RequestData => ({
  optimizationId,
  programId: "label-qa",
  ...labelBootstrap,
  ...overrides,
});

const completedOf = async (log: Awaited<ReturnType<typeof system>>, id: string) =>
  (await eventsOn(log, Topics.optimizations)).find(
    (e): e is EventOf<"OptimizationCompleted"> =>
      e.type === "OptimizationCompleted" && e.data.optimizationId === id,
  );

/** The same optimization in-process (no log): what the stream run must end with. */
const inProcess = (data: RequestData) =>
  runOptimization(setupOf(data, labelProgram()), {
    strategy: strategyFor(data.optimizer ?? "bootstrap"),
    evaluator: programEvaluator(labelTaskRun, metricRegistry()),
    record: async () => undefined,
  });

describe("the optimizer consuming OptimizationRequested (embedded log, test executor)", () => {
  it("runs a published request, lands the winner with provenance, and resumes after being stopped mid-run", async () => {
    const log = await system();
    const data = request("runner-1", { optimizer: "random", params: { trials: 8, maxDemos: 4 } });
    await appendEvents(log, [optimizationRequested(data)]);
    // Stopped (as a crash would) from its own progress, once three trials are on the log: the run stops
    // before its next step, and nothing of the request is committed.
    let stopped: Promise<void> | undefined;
    const first = startOptimizer(log, {
      onProgress: (_, progress) => {
        if (progress.trial >= 2) stopped ??= first.stop();
      },
    });
    await eventually(async () => (stopped ? true : undefined));
    await stopped;
    const trials = (await eventsOn(log, Topics.optimizations)).filter((e) => e.type === "TrialEvaluated");
    expect(trials.length).toBeGreaterThanOrEqual(3);
    expect(await completedOf(log, "runner-1")).toBeUndefined();

    const second = startOptimizer(log);
    cleanups.push(second.stop);
    const completed = await eventually(() => completedOf(log, "runner-1"));
    const events = (await eventsOn(log, Topics.optimizations)).filter((e) => e.key === "runner-1");
    // Each trial proposed and evaluated once; the same end as an uninterrupted in-process run.
    const proposed = events.flatMap((e) => (e.type === "TrialProposed" ? [e.data.trial] : []));
    expect(new Set(proposed).size).toBe(proposed.length);
    expect(events.filter((e) => e.type === "OptimizationCompleted")).toHaveLength(1);
    const reference = await inProcess(data);
    expect(completed.data).toMatchObject({
      baselineScore: reference.baselineScore,
      bestScore: reference.bestScore,
      bestConfig: reference.bestConfig,
      accepted: true,
      trials: reference.trials,
    });
    const demos = await eventually(async () => {
      const state = (await readRegistry(log)).variables.get(demosVariable);
      return state?.lease === null && state.version > 0 ? state : undefined;
    });
    expect(demos.value).toEqual(reference.bestConfig[demosVariable]);
    // Delivered again (a second publish): not run again.
    await appendEvents(log, [optimizationRequested(data)]);
    await untilCaughtUp(log, { "dspex-optimizer": [Topics.requests] });
    expect((await eventsOn(log, Topics.optimizations)).filter((e) => e.key === "runner-1")).toHaveLength(
      events.length,
    );
  }, 90_000);

  it("publishes a request and runs it in this process, as `dspex optimize` does", async () => {
    const log = await system();
    const phases: string[] = [];
    const result = await requestOptimization(log, request("cli-1"), {
      onProgress: (p) => phases.push(p.phase),
    });
    expect(result).toMatchObject({ optimizationId: "cli-1", accepted: true, baselineScore: 0 });
    expect(phases[0]).toBe("baseline");
    expect(phases.at(-1)).toBe("final");
    const requests = (await eventsOn(log, Topics.requests)).filter((e) => e.type === "OptimizationRequested");
    expect(requests.map((e) => e.key)).toEqual(["cli-1"]);
  }, 60_000);

  it("runs the requests it holds by priority: the request's own, else its program's hint", async () => {
    const log = await system();
    await registerProgram(log, { ...labelProgram(), programId: "label-qa-urgent", hints: { priority: 5 } });
    const optimizer = startOptimizer(log, { maxConcurrent: 1 });
    cleanups.push(() => optimizer.stop());
    // One append: the runner takes all three in one batch and starts one at a time.
    await appendEvents(log, [
      optimizationRequested(request("by-order")),
      optimizationRequested(request("by-hint", { programId: "label-qa-urgent" })),
      optimizationRequested(request("by-request", { priority: 9 })),
    ]);
    const started = await eventually(async () => {
      const events = (await eventsOn(log, Topics.optimizations)).filter(
        (e) => e.type === "OptimizationStarted",
      );
      return events.length === 3 ? events.map((e) => e.key) : undefined;
    }, 90_000);
    expect(started).toEqual(["by-request", "by-hint", "by-order"]);
  }, 120_000);

  it("closes the loop: low quality → the re-optimizer's request → trials → adopted only when it beats the current by the margin", async () => {
    const log = await system();
    const policy = {
      programId: "label-qa",
      threshold: 0.5,
      metric: "judge",
      minExecutions: 3,
      margin: 0.1,
      request: labelBootstrap,
    };
    const reoptimizer = runProcessor(log, reoptimizationProcessor([policy]));
    await reoptimizer.ready;
    const optimizer = startOptimizer(log);
    cleanups.push(async () => {
      await optimizer.stop();
      await reoptimizer.stop();
    });
    // Production traffic, which an online judge scores low.
    const client = createClient(log);
    let n = 0;
    const traffic = async (score: number) => {
      for (let i = 0; i < policy.minExecutions; i++) {
        const label = LABELS[n % LABELS.length]!;
        const result = await client.execute(
          {
            requestId: `prod-${n++}`,
            programId: "label-qa",
            inputs: { label, question: `code of ${label}?` },
          },
          { timeoutMs: 30_000 },
        );
        expect(result.type).toBe("ExecutionCompleted");
        await appendEvents(log, [
          MetricRecorded.create({
            stream: "metrics-label-qa",
            key: "label-qa",
            data: { programId: "label-qa", name: "judge", value: score, executionId: result.data.requestId },
          }),
        ]);
      }
    };
    await traffic(0);
    const optimizationCompleted = async (count: number) =>
      eventually(async () => {
        const done = (await eventsOn(log, Topics.optimizations)).filter(
          (e): e is EventOf<"OptimizationCompleted"> => e.type === "OptimizationCompleted",
        );
        return done.length >= count ? done : undefined;
      });
    const [first] = await optimizationCompleted(1);
    expect(first!.data.accepted).toBe(true);
    expect(first!.data.bestScore).toBeGreaterThan(first!.data.baselineScore + policy.margin);
    const adopted = await eventually(async () => {
      const state = (await readRegistry(log)).variables.get(demosVariable);
      return state?.lease === null && state.version > 0 ? state : undefined;
    });
    const changed = (await eventsOn(log, Topics.variables)).filter((e) => e.type === "VariableChanged");
    expect(changed.at(-1)?.data).toMatchObject({
      provenance: {
        optimizationId: first!.data.optimizationId,
        scoreBefore: first!.data.baselineScore,
        scoreAfter: first!.data.bestScore,
      },
    });

    // Quality drops again: a second optimization, which can't beat the adopted demos by the margin.
    await traffic(0.2);
    const [, second] = await optimizationCompleted(2);
    expect(second!.data.optimizationId).not.toBe(first!.data.optimizationId);
    expect(second!.data.baselineScore).toBe(first!.data.bestScore);
    expect(second!.data.accepted).toBe(false);
    await eventually(async () =>
      (await readRegistry(log)).variables.get(demosVariable)?.lease === null ? true : undefined,
    );
    const state = (await readRegistry(log)).variables.get(demosVariable)!;
    expect(state.version).toBe(adopted.version);
    const requests = (await eventsOn(log, Topics.requests)).filter((e) => e.type === "OptimizationRequested");
    expect(requests).toHaveLength(2);
  }, 90_000);

  it("runs SIMBA's reflections as executions of the reflection program, and its rules reach the candidates", async () => {
    const log = await system();
    const data = request("simba-1", {
      optimizer: "simba",
      variables: ["demos", "instructions"],
      seed: 3,
      params: { bsize: 6, numCandidates: 3, maxSteps: 2, maxDemos: 0 },
    });
    await appendEvents(log, [optimizationRequested(data)]);
    const optimizer = startOptimizer(log);
    cleanups.push(optimizer.stop);
    const completed = await eventually(() => completedOf(log, "simba-1"));
    const results = await eventsOn(log, Topics.results);
    const reflections = results.filter(
      (e): e is EventOf<"ExecutionCompleted"> =>
        e.type === "ExecutionCompleted" && e.data.programId === reflectionProgramId,
    );
    expect(reflections.length).toBeGreaterThan(0);
    const rules = reflections.flatMap((e) =>
      Object.values(e.data.outputs.module_advice as Record<string, string>),
    );
    expect(rules.every((rule) => /^When label is \w+, answer [A-Z]{2}-\d+\.$/.test(rule))).toBe(true);
    // A candidate ran with a rule appended to its instructions.
    const candidates = (await eventsOn(log, Topics.optimizations)).filter(
      (e) => e.type === "TrialProposed" && e.data.config.phase === "simba-candidate",
    );
    const instructions = candidates.map((e) =>
      String(
        (e.data as unknown as { config: { overrides: Record<string, unknown> } }).config.overrides[
          instructionsVariable
        ],
      ),
    );
    expect(instructions.some((text) => rules.some((rule) => text.includes(rule)))).toBe(true);
    // The reflections' LM calls are counted in the optimization's.
    const evaluated = (await eventsOn(log, Topics.results)).filter(
      (e): e is EventOf<"EvaluationCompleted"> =>
        e.type === "EvaluationCompleted" && e.data.evaluationId.length > 0,
    );
    expect(completed.data.calls).toBeGreaterThanOrEqual(reflections.length);
    expect(evaluated.length).toBeGreaterThan(0);
  }, 90_000);
});
