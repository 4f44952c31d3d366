/**
 * Adapter selection end to end: a stage's `adapter` variable starts on JSONAdapter for a model that answers
 * in DSPy's chat format whatever it is asked (the test LM's `format=chat`), so its steps fail to parse; a
 * share of executions explores ChatAdapter, whose steps parse. The adapter selector tallies both from the
 * stage metrics and switches the variable through the registry; the executions after it complete. Python
 * workers, the public entry point, the embedded log.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dspy, program, v } from "../../index.ts";
import { adapterSelector } from "../../processors/adaptation/adapters.ts";
import { adapterOf } from "../../processors/pipeline/planner.ts";
import { findPython } from "../../processors/workers/python.ts";
import type { DspexEvent, EventOf } from "../../streams/events/index.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { temporaryFolder } from "../support/backends.ts";
import { dspexHere } from "../support/dspex-here.ts";
import { setEnv } from "../support/env.ts";
import { testLmRule } from "../support/test-lm.ts";
import { untilCaughtUp } from "../support/waits.ts";
import { eventsOn } from "./optimize-support.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the adapter selection test: ${found.reason}`);

const selection = { minSteps: 5, failureMargin: 0.1, latencyMargin: 0.2 };

describe.skipIf(!found.python)("adapter selection (embedded log, Python workers)", () => {
  const undo: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const step of undo.reverse()) await step();
  });

  it("switches a stage from the adapter whose answers fail to parse to the one that parses them", async () => {
    const folder = temporaryFolder("dspex-adapters-");
    writeFileSync(join(folder, "rules.json"), JSON.stringify([testLmRule("capital", { answer: "Paris" })]));
    writeFileSync(
      join(folder, "dspex.config.json"),
      JSON.stringify({
        embedded: { path: join(folder, "log.db") },
        python: { workers: 1 },
        adapters: selection,
      }),
    );
    undo.push(setEnv({ DSPEX_TEST_LM_ANSWERS: join(folder, "rules.json") }));
    const { dspex, stop } = await dspexHere({
      log: { config: join(folder, "dspex.config.json"), backend: "embedded" },
      processors: ["pipeline", "registry", "adapters"],
    });
    undo.push(stop);
    const qa = await dspex.register(
      program("adapt-qa")
        .input("question: str")
        .stage(
          "answer",
          dspy.predict("question -> answer", { model: "dspex/test?format=chat", adapterExploration: 0.3 }),
          {
            variables: { adapter: v.adapter(["chat", "json"], "json") },
          },
        ),
    );

    const changed = async () =>
      (await eventsOn(dspex.log, Topics.variables)).find(
        (e): e is EventOf<"VariableChanged"> =>
          e.type === "VariableChanged" && e.data.variableId === "adapt-qa.answer.adapter",
      );
    const outcomes: string[] = [];
    for (let i = 0; !(await changed()); i++) {
      if (i >= 200) throw new Error(`no adapter switch after ${i} executions: ${outcomes.join(" ")}`);
      const result = await dspex.execute({
        program: qa,
        inputs: { question: `What is the capital of France? #${i}` },
      });
      outcomes.push(result.type === "ExecutionCompleted" ? "ok" : "failed");
    }
    const switched = (await changed())!;
    expect(switched.data).toMatchObject({ value: "chat", previous: "json", actor: "dspex-adapters" });
    expect(switched.data.reason).toMatch(/json: 100 % parse failures/);
    expect(switched.data.reason).toMatch(/chat: 0 % parse failures/);
    const variables = await eventsOn(dspex.log, Topics.variables);
    const command = variables.find((e) => e.id === switched.causationId)!;
    expect(command.type).toBe("VariableCommandIssued");
    const metrics = await eventsOn(dspex.log, Topics.metrics);
    const decidedBy = metrics.find((e) => e.id === command.causationId) as EventOf<"MetricRecorded">;
    expect(decidedBy).toMatchObject({ type: "MetricRecorded", data: { name: "stage.duration_ms" } });

    // After the switch: every step that did not explore asks for ChatAdapter, and completes.
    const after: string[] = [];
    for (let i = 0; i < 10; i++) {
      const result = await dspex.execute({
        program: qa,
        inputs: { question: `What is the capital of France? after ${i}` },
      });
      if (result.type !== "ExecutionRejected") after.push(result.data.executionId);
    }
    await untilCaughtUp(dspex.log, {
      "dspex-pipeline": [Topics.requests, Topics.executions, Topics.stepResults],
    });
    const dispatched = (await eventsOn(dspex.log, Topics.steps)).filter(
      (e): e is EventOf<"StepDispatched"> => e.type === "StepDispatched",
    );
    const results = new Map(
      (await eventsOn(dspex.log, Topics.results)).flatMap((e) =>
        e.type === "ExecutionCompleted" || e.type === "ExecutionFailed"
          ? [[e.data.executionId, e.type] as const]
          : [],
      ),
    );
    const byAdapter = { chat: [] as string[], json: [] as string[] };
    for (const step of dispatched) {
      byAdapter[step.data.lm.adapter as "chat" | "json"].push(results.get(step.data.executionId) ?? "none");
    }
    expect(byAdapter.chat.length).toBeGreaterThanOrEqual(selection.minSteps);
    expect(new Set(byAdapter.chat)).toEqual(new Set(["ExecutionCompleted"]));
    expect(new Set(byAdapter.json)).toEqual(new Set(["ExecutionFailed"]));
    // Each step asked for the adapter the planner draws for its execution from the variable's value: chat
    // after the switch, exploring json in 30 % of executions; json before it, exploring chat. With two
    // choices the two draws always differ, so each step shows which value it saw. The pipeline reads the
    // registry as it goes: the first requests after the switch may still see json, never one after a
    // request that saw chat.
    const draw = (executionId: string, current: "chat" | "json") =>
      adapterOf(
        {
          lm: { model: "m", temperature: 0, maxTokens: 1, adapter: current },
          adapters: { choices: ["chat", "json"], exploration: 0.3 },
        },
        executionId,
        "answer",
      ).adapter;
    const saw = (step: EventOf<"StepDispatched">) =>
      step.data.lm.adapter === draw(step.data.executionId, "chat") ? "chat" : "json";
    for (const step of dispatched)
      expect([draw(step.data.executionId, "json"), draw(step.data.executionId, "chat")]).toContain(
        step.data.lm.adapter,
      );
    const afterSteps = after.map((id) => dispatched.find((s) => s.data.executionId === id)!);
    expect(afterSteps).toHaveLength(10);
    const seen = afterSteps.map(saw);
    expect(seen.indexOf("chat")).toBeGreaterThanOrEqual(0);
    expect(seen.slice(seen.indexOf("chat"))).toEqual(Array(10 - seen.indexOf("chat")).fill("chat"));
    const onChat = afterSteps.filter((s) => s.data.lm.adapter === "chat");
    expect(onChat.every((s) => results.get(s.data.executionId) === "ExecutionCompleted")).toBe(true);

    // The same metrics folded again decide the same switch.
    let state = adapterSelector(selection).initialState;
    const emitted: DspexEvent[] = [];
    for (const record of await readEvents(dspex.log, Topics.metrics)) {
      if (!("event" in record)) continue;
      const out = adapterSelector(selection).handle(state, record.event, {
        now: record.record.timestamp,
        source: record.record,
        key: record.record.key,
        consumer: "dspex-adapters",
        table: undefined,
      });
      state = out.state;
      emitted.push(...(out.emit as DspexEvent[]));
    }
    expect(emitted.map((e) => e.id)).toEqual([command.id]);
    console.log(
      `adapter selection: switched json → chat after ${outcomes.length} executions (${outcomes.filter((o) => o === "ok").length} completed, on explored ChatAdapter steps); ` +
        `after it ${onChat.length}/${afterSteps.length} steps on chat, all completed`,
    );
  }, 300_000);
});
