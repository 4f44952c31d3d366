import { causedBy } from "../../streams/envelope.ts";
import { type EventOf, stageMetric, VariableCommandIssued } from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import { Topics } from "../../streams/topics.ts";
import type { Output, Processor, ProcessorContext } from "../runtime/index.ts";

/** When one adapter is better enough to switch to. */
export interface AdapterSelection {
  /** Steps each adapter must have run (since the last switch) before they are compared. */
  minSteps: number;
  /** How much lower the winner's parse-failure rate must be. */
  failureMargin: number;
  /** With parse-failure rates within 0.02 of each other: how much faster (a fraction) the winner must be. */
  latencyMargin: number;
}

export const defaultAdapterSelection: AdapterSelection = {
  minSteps: 10,
  failureMargin: 0.1,
  latencyMargin: 0.2,
};

interface Tally {
  steps: number;
  parseFailures: number;
  durationMs: number;
}

interface Series {
  /** The adapter variable's value, as the steps that did not explore show it. */
  current?: string;
  tallies: Readonly<Record<string, Tally>>;
}

export interface AdapterSelectorState {
  series: Readonly<Record<string, Series>>;
}

const failureRate = (t: Tally) => t.parseFailures / t.steps;
const meanMs = (t: Tally) => t.durationMs / t.steps;

const tallied = (tally: Tally | undefined, metric: EventOf<"MetricRecorded">["data"]): Tally => ({
  steps: (tally?.steps ?? 0) + 1,
  parseFailures: (tally?.parseFailures ?? 0) + (metric.labels.error === "parse" ? 1 : 0),
  durationMs: (tally?.durationMs ?? 0) + metric.value,
});

/** The adapter to switch to, if one beats the current by the margins once every adapter ran `minSteps`. */
export const betterAdapter = (series: Series, rules: AdapterSelection): string | undefined => {
  const { current, tallies } = series;
  const measured = Object.entries(tallies);
  if (!current || !tallies[current] || measured.length < 2) return undefined;
  if (measured.some(([, t]) => t.steps < rules.minSteps)) return undefined;
  const mine = tallies[current];
  const [best, tally] = measured.reduce((a, b) =>
    failureRate(b[1]) < failureRate(a[1]) ||
    (failureRate(b[1]) === failureRate(a[1]) && meanMs(b[1]) < meanMs(a[1]))
      ? b
      : a,
  );
  if (best === current) return undefined;
  const fewerFailures = failureRate(mine) - failureRate(tally) >= rules.failureMargin;
  const asReliable = Math.abs(failureRate(mine) - failureRate(tally)) <= 0.02;
  const faster = meanMs(tally) <= (1 - rules.latencyMargin) * meanMs(mine);
  return fewerFailures || (asReliable && faster) ? best : undefined;
};

const describe = (adapter: string, t: Tally) =>
  `${adapter}: ${(failureRate(t) * 100).toFixed(0)} % parse failures, ${meanMs(t).toFixed(0)} ms mean over ${t.steps} steps`;

const switchTo = (
  adapter: string,
  series: Series,
  metric: EventOf<"MetricRecorded">,
  ctx: ProcessorContext,
) => {
  const { programId, labels } = metric.data;
  const variableId = `${programId}.${labels.stage}.adapter`;
  const figures = Object.entries(series.tallies).map(([name, t]) => describe(name, t));
  return VariableCommandIssued.create({
    id: derivedId(metric.id, `adapter/${adapter}`),
    stream: `variable-${variableId}`,
    key: variableId,
    occurredAt: new Date(ctx.now).toISOString(),
    ...causedBy(metric),
    data: {
      command: "set",
      variableId,
      value: adapter,
      actor: "dspex-adapters",
      reason: `on ${labels.model}: ${figures.join("; ")}`,
    },
  });
};

/**
 * Adapter selection: tallies each adapter's parse failures and latency per program, stage and model from
 * the stage metrics (steps that explore another adapter than the variable's are labelled so), and once
 * every adapter has run enough steps sets the stage's `adapter` variable to the better one through the
 * registry, caused by the metric that decided it. Its tallies start again after a switch.
 */
export const adapterSelector = (
  rules: AdapterSelection = defaultAdapterSelection,
  name = "dspex-adapters",
): Processor<AdapterSelectorState> => ({
  name,
  topics: [Topics.metrics],
  initialState: { series: {} },
  version: 1,
  handle(state, event, ctx): Output<AdapterSelectorState> {
    if (event.type !== "MetricRecorded" || event.data.name !== stageMetric) return { state, emit: [] };
    const { programId, labels } = event.data;
    if (!labels.adapter || !labels.stage) return { state, emit: [] };
    const key = [programId, labels.stage, labels.model ?? ""].join("\u0000");
    const before = state.series[key] ?? { tallies: {} };
    const series: Series = {
      current: labels.explored ? before.current : labels.adapter,
      tallies: { ...before.tallies, [labels.adapter]: tallied(before.tallies[labels.adapter], event.data) },
    };
    const better = betterAdapter(series, rules);
    if (!better) return { state: { series: { ...state.series, [key]: series } }, emit: [] };
    return {
      state: { series: { ...state.series, [key]: { current: better, tallies: {} } } },
      emit: [switchTo(better, series, event, ctx)],
    };
  },
});
