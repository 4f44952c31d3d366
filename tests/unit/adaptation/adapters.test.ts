import { describe, expect, it } from "vitest";
import {
  adapterSelector,
  betterAdapter,
  defaultAdapterSelection,
} from "../../../processors/adaptation/adapters.ts";
import { adapterOf } from "../../../processors/pipeline/planner.ts";
import { type DspexEvent, type EventOf, MetricRecorded } from "../../../streams/events/index.ts";

describe("which adapter a step uses", () => {
  const settings = {
    lm: { model: "m", temperature: 0, maxTokens: 16, adapter: "json" as const },
    adapters: { choices: ["chat" as const, "json" as const], exploration: 0.1 },
  };
  const ids = Array.from({ length: 2_000 }, (_, i) => `execution-${i}`);

  it("is the variable's, except in about the exploration share of executions, which try the other", () => {
    const picks = ids.map((id) => adapterOf(settings, id, "answer"));
    const explored = picks.filter((p) => p.explored);
    expect(explored.length / ids.length).toBeGreaterThan(0.07);
    expect(explored.length / ids.length).toBeLessThan(0.13);
    expect(explored.every((p) => p.adapter === "chat")).toBe(true);
    expect(picks.filter((p) => !p.explored).every((p) => p.adapter === "json")).toBe(true);
  });

  it("draws the same for the same execution and stage, and never explores without choices", () => {
    expect(ids.map((id) => adapterOf(settings, id, "answer"))).toEqual(
      ids.map((id) => adapterOf(settings, id, "answer")),
    );
    const fixed = { ...settings, adapters: { choices: [], exploration: 0 } };
    expect(ids.some((id) => adapterOf(fixed, id, "answer").explored)).toBe(false);
  });
});

let n = 0;
const stepMetric = (adapter: string, ok: boolean, ms: number, explored = false) =>
  MetricRecorded.create({
    stream: "metrics-qa",
    key: "qa",
    data: {
      programId: "qa",
      name: "stage.duration_ms",
      value: ms,
      unit: "ms",
      labels: {
        stage: "answer",
        model: "dspex/test",
        adapter,
        status: ok ? "completed" : "failed",
        ...(ok ? {} : { error: "parse" }),
        ...(explored ? { explored: "true" } : {}),
      },
      executionId: `x${++n}`,
    },
  });

const drive = (events: DspexEvent[]) => {
  const selector = adapterSelector();
  let state = selector.initialState;
  const emitted: DspexEvent[] = [];
  for (const event of events) {
    const out = selector.handle(state, event, {
      now: 0,
      source: { topic: "dspex.metrics", partition: 0, offset: 0 },
      key: "qa",
      consumer: "dspex-adapters",
      table: undefined,
    });
    state = out.state;
    emitted.push(...(out.emit as DspexEvent[]));
  }
  return emitted;
};

const times = (count: number, make: () => DspexEvent) => Array.from({ length: count }, make);

describe("the adapter selector", () => {
  it("switches the stage's adapter variable to the one with fewer parse failures, caused by the deciding metric", () => {
    const events = [
      ...times(10, () => stepMetric("json", false, 40)),
      ...times(10, () => stepMetric("chat", true, 50, true)),
    ];
    const [command, ...rest] = drive(events) as EventOf<"VariableCommandIssued">[];
    expect(rest).toEqual([]);
    expect(command!.causationId).toBe(events.at(-1)!.id);
    expect(command!.data).toMatchObject({
      command: "set",
      variableId: "qa.answer.adapter",
      value: "chat",
      actor: "dspex-adapters",
    });
    expect(command!.data).toHaveProperty(
      "reason",
      expect.stringMatching(/chat: 0 % parse failures, 50 ms mean over 10 steps/),
    );
  });

  it("waits until every adapter ran its minimum of steps, and starts counting again after a switch", () => {
    expect(
      drive([
        ...times(10, () => stepMetric("json", false, 40)),
        ...times(9, () => stepMetric("chat", true, 50, true)),
      ]),
    ).toEqual([]);
    const again = [
      ...times(10, () => stepMetric("json", false, 40)),
      ...times(10, () => stepMetric("chat", true, 50, true)),
      ...times(9, () => stepMetric("json", false, 40, true)),
    ];
    expect(drive(again)).toHaveLength(1);
  });

  it("prefers the faster of two as reliable only by the latency margin", () => {
    const series = (chatMs: number) => ({
      current: "json",
      tallies: {
        json: { steps: 10, parseFailures: 0, durationMs: 1_000 },
        chat: { steps: 10, parseFailures: 0, durationMs: chatMs },
      },
    });
    expect(betterAdapter(series(700), defaultAdapterSelection)).toBe("chat");
    expect(betterAdapter(series(900), defaultAdapterSelection)).toBeUndefined();
  });

  it("learns the current adapter from the steps that did not explore", () => {
    // Only explored steps of json: the current adapter is unknown, nothing to compare against.
    expect(
      drive([
        ...times(10, () => stepMetric("json", false, 40, true)),
        ...times(10, () => stepMetric("chat", true, 50, true)),
      ]),
    ).toEqual([]);
  });
});
