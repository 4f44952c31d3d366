/**
 * Model failover from alerts end to end: a stage's `model` variable chooses between two providers (test LMs
 * with answer files of their own). The first starts answering what the signature's int cannot read, its stage
 * failure rate rises → AlertRaised on that stage and model → the failover processor moves the variable to
 * the next model through the registry → the next executions run on it and complete. Each step is caused by
 * the one before. Python workers, the embedded log, `dspex processors`' own processors in this process.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dspy, program, v } from "../../index.ts";
import { findPython } from "../../processors/workers/python.ts";
import type { EventOf } from "../../streams/events/index.ts";
import { Topics } from "../../streams/topics.ts";
import { temporaryFolder } from "../support/backends.ts";
import { dspexHere } from "../support/dspex-here.ts";
import { testLmRule } from "../support/test-lm.ts";
import { eventsOn } from "./optimize-support.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the failover test: ${found.reason}`);

describe.skipIf(!found.python)("model failover from alerts (embedded log, Python workers)", () => {
  const undo: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const step of undo.reverse()) await step();
  });

  it("moves a stage to its next model when its failures on the first one rise, and the executions complete again", async () => {
    const folder = temporaryFolder("dspex-failover-");
    const answers = (name: string, answer: unknown) => {
      const path = join(folder, `${name}.json`);
      writeFileSync(path, JSON.stringify([testLmRule("How many", { answer })]));
      return path;
    };
    const primary = `dspex/test?answers=${answers("primary", 7)}`;
    const secondary = `dspex/test?answers=${answers("secondary", 7)}`;
    writeFileSync(
      join(folder, "dspex.config.json"),
      JSON.stringify({
        embedded: { path: join(folder, "log.db") },
        python: { workers: 1 },
        alerts: [{ metric: "stage.failure_rate", direction: "up", threshold: 0.35, warmup: 6 }],
        failover: [{ metric: "stage.failure_rate" }],
      }),
    );
    const { dspex, stop } = await dspexHere({
      log: { config: join(folder, "dspex.config.json"), backend: "embedded" },
      processors: ["pipeline", "registry", "alerts", "failover"],
    });
    undo.push(stop);
    const counter = await dspex.register(
      program("counter")
        .input("question: str")
        .stage("answer", dspy.predict("question -> answer: int"), {
          variables: { model: v.model([primary, secondary]) },
        }),
    );
    let n = 0;
    const ask = () => dspex.execute({ program: counter, inputs: { question: `How many moons? #${n++}` } });
    for (let i = 0; i < 8; i++) expect((await ask()).type).toBe("ExecutionCompleted");

    // The primary provider degrades: its answers no longer fit the signature's int.
    answers("primary", "seven, I think");
    const moved = async () =>
      (await eventsOn(dspex.log, Topics.variables)).find(
        (e): e is EventOf<"VariableChanged"> =>
          e.type === "VariableChanged" && e.data.variableId === "counter.answer.model",
      );
    const failed: string[] = [];
    for (let i = 0; !(await moved()); i++) {
      if (i >= 50) throw new Error(`no failover after ${i} executions`);
      const result = await ask();
      failed.push(result.type);
    }
    expect(failed[0]).toBe("ExecutionFailed");
    const changed = (await moved())!;
    expect(changed.data).toMatchObject({ value: secondary, previous: primary, actor: "dspex-failover" });
    // The pipeline reads the registry as it goes: a request right after the change may still see the old
    // model (and fail). From the first step on the secondary on, every step runs there and completes.
    const after: Awaited<ReturnType<typeof ask>>[] = [];
    const completed = () => after.filter((r) => r.type === "ExecutionCompleted").length;
    for (let i = 0; i < 10 && completed() < 3; i++) after.push(await ask());
    expect(completed()).toBe(3);
    const models = new Map(
      (await eventsOn(dspex.log, Topics.steps)).flatMap((e) =>
        e.type === "StepDispatched" ? [[e.data.executionId, e.data.lm.model] as const] : [],
      ),
    );
    const ran = after.map((r) =>
      r.type === "ExecutionRejected" ? ["rejected"] : [models.get(r.data.executionId), r.type],
    );
    const firstOnSecondary = ran.findIndex(([model]) => model === secondary);
    expect(
      ran
        .slice(0, firstOnSecondary)
        .every(([model, type]) => model === primary && type === "ExecutionFailed"),
    ).toBe(true);
    expect(ran.slice(firstOnSecondary)).toEqual(Array(3).fill([secondary, "ExecutionCompleted"]));
    expect(after.flatMap((r) => (r.type === "ExecutionCompleted" ? [r.data.outputs.answer] : []))).toEqual([
      7, 7, 7,
    ]);

    // VariableChanged ← the failover's command ← the alert on the primary ← the stage metric that crossed.
    const variables = await eventsOn(dspex.log, Topics.variables);
    const command = variables.find((e) => e.id === changed.causationId)!;
    expect(command).toMatchObject({
      type: "VariableCommandIssued",
      data: { command: "set", value: secondary },
    });
    const metrics = await eventsOn(dspex.log, Topics.metrics);
    const alert = metrics.find((e) => e.id === command.causationId) as EventOf<"AlertRaised">;
    expect(alert).toMatchObject({
      type: "AlertRaised",
      data: { metric: "stage.failure_rate", direction: "up", labels: { stage: "answer", model: primary } },
    });
    const crossed = metrics.find((e) => e.id === alert.causationId) as EventOf<"MetricRecorded">;
    expect(crossed).toMatchObject({
      type: "MetricRecorded",
      data: {
        name: "stage.duration_ms",
        labels: { stage: "answer", model: primary, status: "failed", error: "parse" },
      },
    });
    console.log(
      `failover: ${failed.length} executions failed on the primary before the alert moved the stage to the secondary; ` +
        `the next ${completed()} of ${after.length} completed on it`,
    );
  }, 300_000);
});
