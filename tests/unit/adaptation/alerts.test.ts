import { describe, expect, it } from "vitest";
import { alertsProcessor } from "../../../processors/adaptation/alerts.ts";
import { observe, type Trend, type TrendRule } from "../../../processors/adaptation/trends.ts";
import { alertsProjection } from "../../../projections/alerts.ts";
import { project } from "../../../projections/index.ts";
import type { Envelope } from "../../../streams/envelope.ts";
import {
  type DspexEvent,
  type EventOf,
  executionMetric,
  failureRateMetric,
  MetricRecorded,
} from "../../../streams/events/index.ts";

const judged: TrendRule = {
  metric: "judge",
  direction: "down",
  threshold: 0.35,
  relative: false,
  alpha: 0.3,
  baselineAlpha: 0.02,
  warmup: 5,
};

/** The series after these values, and at which values (1-based) it crossed, either way. */
const series = (rule: TrendRule, values: number[]) => {
  let trend: Trend | undefined;
  const crossings: [number, string][] = [];
  values.forEach((value, i) => {
    const { trend: next, crossing } = observe(rule, trend, value);
    trend =
      crossing === "raised" || (trend?.open && crossing !== "cleared")
        ? { ...next, open: { alertId: "a", raisedAt: "t" } }
        : next;
    if (crossing) crossings.push([i + 1, crossing]);
  });
  return { trend: trend!, crossings };
};

const ones = (n: number) => Array<number>(n).fill(1);
const zeros = (n: number) => Array<number>(n).fill(0);

describe("a trend: a fast average against a slow baseline", () => {
  it("judges nothing while warming up, however bad the values", () => {
    expect(series(judged, [1, 0, 0, 0, 0]).crossings).toEqual([]);
  });

  it("rises when a score falls for good, clears once it is back within half the threshold", () => {
    // After 8 ones both averages are 1; zeros pull the fast one to 0.7 (a gap of 0.3: not yet), 0.49 (0.49 below 0.98) ...
    const { crossings, trend } = series(judged, [...ones(8), ...zeros(4), ...ones(8)]);
    expect(crossings).toEqual([
      [10, "raised"],
      [16, "cleared"], // ones lift it to 0.47, 0.63, 0.74, 0.82: within 0.175 of 0.98
    ]);
    expect(trend.open).toBeUndefined();
    // ... while the baseline stays where it was before the drop (frozen while the alert is open).
    expect(series(judged, [...ones(8), ...zeros(4)]).trend.baseline).toBeCloseTo(0.98); // the first zero
  });

  it("lets a single bad value pass: one zero among ones moves the average by alpha only", () => {
    expect(series(judged, [...ones(8), 0, ...ones(8), 0, ...ones(4)]).crossings).toEqual([]);
  });

  it("watches the other way for latencies, relative to the baseline", () => {
    const latency: TrendRule = {
      ...judged,
      metric: "execution.duration_ms",
      direction: "up",
      threshold: 0.5,
      relative: true,
    };
    const { crossings } = series(latency, [...Array(8).fill(100), ...Array(4).fill(400)]);
    expect(crossings).toEqual([[9, "raised"]]); // 100 → 190: 90 above, more than half of 100
    // The same rise on a score that must not fall says nothing.
    expect(
      series({ ...latency, direction: "down" }, [...Array(8).fill(100), ...Array(4).fill(400)]).crossings,
    ).toEqual([]);
  });
});

const ctx = (now: number) => ({
  now,
  source: { topic: "dspex.metrics", partition: 0, offset: now },
  key: "qa",
  consumer: "dspex-alerts",
  table: undefined,
});

let n = 0;
const metric = (name: string, value: number, labels: Record<string, string> = {}, programId = "qa") =>
  MetricRecorded.create({
    stream: `metrics-${programId}`,
    key: programId,
    data: { programId, name, value, labels, executionId: `x${++n}` },
  });
const judge = (value: number) => metric("judge", value);
const execution = (status: "completed" | "failed", origin = "request") =>
  metric(executionMetric, 120, { status, origin, stage: "answer" });

const drive = (rules: TrendRule[], events: Envelope[]) => {
  const processor = alertsProcessor(rules);
  let state = processor.initialState;
  const emitted: DspexEvent[] = [];
  events.forEach((event, i) => {
    const out = processor.handle(state, event as DspexEvent, ctx(1_000 * (i + 1)));
    state = out.state;
    emitted.push(...(out.emit as DspexEvent[]));
  });
  return { emitted, state };
};

describe("the alerts processor", () => {
  it("raises and clears an alert, each caused by the metric that crossed, the clear naming the raise", () => {
    const events = [...ones(8), ...zeros(4), ...ones(8)].map(judge);
    const { emitted } = drive([judged], events);
    expect(emitted.map((e) => e.type)).toEqual(["AlertRaised", "AlertCleared"]);
    const [raised, cleared] = emitted as [EventOf<"AlertRaised">, EventOf<"AlertCleared">];
    expect(raised.causationId).toBe(events[9]!.id);
    expect(raised.key).toBe("qa");
    expect(raised.data).toMatchObject({
      alertId: raised.id,
      programId: "qa",
      metric: "judge",
      method: "ewma",
      threshold: 0.35,
      observations: 10,
    });
    expect(raised.data.baseline).toBeCloseTo(0.98);
    expect(raised.data.current).toBeCloseTo(0.49);
    expect(cleared.causationId).toBe(events[15]!.id);
    expect(cleared.data).toMatchObject({ alertId: raised.id, raisedAt: raised.occurredAt, observations: 16 });
    expect(cleared.data.current).toBeGreaterThanOrEqual(raised.data.baseline - 0.35 / 2);
  });

  it("gives the same alerts, ids included, when the same metrics are folded again (a rebuild)", () => {
    const events = [...ones(8), ...zeros(4), ...ones(8)].map(judge);
    expect(drive([judged], events).emitted).toEqual(drive([judged], events).emitted);
  });

  it("derives the failure rate from the executions, production only, one series per stage", () => {
    const rule: TrendRule = { ...judged, metric: failureRateMetric, direction: "up", threshold: 0.3 };
    const production = [...Array(6).fill("completed"), ...Array(3).fill("failed")].map((s) => execution(s));
    const { emitted } = drive([rule], production);
    expect(emitted.map((e) => [e.type, (e as EventOf<"AlertRaised">).data.labels])).toEqual([
      ["AlertRaised", { stage: "answer" }],
    ]);
    const evaluations = Array.from({ length: 9 }, (_, i) =>
      execution(i < 6 ? "completed" : "failed", "evaluation"),
    );
    expect(drive([rule], evaluations).emitted).toEqual([]);
  });

  it("keeps programs apart, and a rule naming a program watches only that one", () => {
    const drop = [...ones(8), ...zeros(4)];
    const events = [
      ...drop.map((v) => metric("judge", v, {}, "a")),
      ...drop.map((v) => metric("judge", v, {}, "b")),
    ];
    expect(drive([judged], events).emitted.map((e) => e.key)).toEqual(["a", "b"]);
    expect(drive([{ ...judged, programId: "b" }], events).emitted.map((e) => e.key)).toEqual(["b"]);
  });

  it("ignores its own alerts and metrics no rule watches", () => {
    const { emitted } = drive([judged], [...ones(8), ...zeros(4)].map(judge));
    expect(drive([judged], [...emitted, ...ones(20).map((v) => metric("latency", v))]).emitted).toEqual([]);
  });
});

describe("the alerts read model", () => {
  it("lists each alert once, with when and how it rose and cleared", () => {
    const { emitted } = drive([judged], [...ones(8), ...zeros(4), ...ones(8), ...zeros(6)].map(judge));
    const state = project(alertsProjection, emitted);
    const alerts = [...state.values()];
    expect(alerts).toHaveLength(2);
    const [first, second] = alerts;
    expect(first).toMatchObject({ metric: "judge", clearedAt: expect.any(String) });
    expect(first!.raisedAtValue).toBeCloseTo(0.49);
    expect(second!.clearedAt).toBeUndefined();
    expect(second!.raisedBy).toBe(emitted[2]!.causationId);
  });
});
