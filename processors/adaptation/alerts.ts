import { causedBy } from "../../streams/envelope.ts";
import {
  AlertCleared,
  AlertRaised,
  type EventOf,
  executionMetric,
  failureRateMetric,
  stageFailureRateMetric,
  stageMetric,
} from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import { Topics } from "../../streams/topics.ts";
import type { Output, Processor, ProcessorContext } from "../runtime/index.ts";
import { type Crossing, observe, type Trend, type TrendRule } from "./trends.ts";

/** The labels that split a series: one trend per stage and per model. */
const splitting = ["stage", "model"] as const;

type Metric = EventOf<"MetricRecorded">["data"];

/** Each failure-rate series and the metric it derives from (1 per failed one, 0 per completed one). */
const failureRatesOf: Readonly<Record<string, string>> = {
  [failureRateMetric]: executionMetric,
  [stageFailureRateMetric]: stageMetric,
};

/** The value a metric adds to the rule's series, if it is one of its values. */
export const valueFor = (rule: TrendRule, metric: Metric): number | undefined => {
  if (rule.programId !== undefined && rule.programId !== metric.programId) return undefined;
  const source = failureRatesOf[rule.metric];
  if (source !== undefined)
    return metric.name === source ? (metric.labels.status === "completed" ? 0 : 1) : undefined;
  return metric.name === rule.metric ? metric.value : undefined;
};

const seriesLabels = (labels: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(splitting.flatMap((name) => (labels[name] ? [[name, labels[name]]] : [])));

const seriesKey = (programId: string, rule: TrendRule, labels: Record<string, string>) =>
  [programId, rule.metric, rule.direction, ...splitting.map((name) => labels[name] ?? "")].join("\u0000");

export interface AlertsState {
  trends: Readonly<Record<string, Trend>>;
}

const alertOf = (
  crossing: Exclude<Crossing, undefined>,
  rule: TrendRule,
  trend: Omit<Trend, "open">,
  baseline: number,
  open: Trend["open"],
  cause: EventOf<"MetricRecorded">,
  labels: Record<string, string>,
  ctx: ProcessorContext,
) => {
  const { programId } = cause.data;
  const id = derivedId(cause.id, `alert-${crossing}/${rule.metric}/${rule.direction}`);
  const header = {
    id,
    stream: `alerts-${programId}`,
    key: programId,
    occurredAt: new Date(ctx.now).toISOString(),
    ...causedBy(cause),
  };
  const figures = {
    programId,
    metric: rule.metric,
    labels,
    method: "ewma" as const,
    direction: rule.direction,
    baseline,
    current: trend.current,
    threshold: rule.threshold * (rule.relative ? Math.abs(baseline) : 1),
    observations: trend.observations,
  };
  return crossing === "raised"
    ? AlertRaised.create({ ...header, data: { ...figures, alertId: id } })
    : AlertCleared.create({
        ...header,
        data: { ...figures, alertId: open!.alertId, raisedAt: open!.raisedAt },
      });
};

/**
 * Trends and alerts: folds every production MetricRecorded into the series its rules watch (per program,
 * metric, stage and model) and emits AlertRaised / AlertCleared when one crosses its threshold, caused by
 * the metric that crossed. It reads and writes dspex.metrics, keyed by program: a program's series live
 * in one task whatever the number of instances, and its alerts land in order with its metrics.
 */
export const alertsProcessor = (
  rules: readonly TrendRule[],
  name = "dspex-alerts",
): Processor<AlertsState> => ({
  name,
  topics: [Topics.metrics],
  initialState: { trends: {} },
  version: 1,
  handle(state, event, ctx): Output<AlertsState> {
    // Evaluations and optimizations are not production traffic.
    if (event.type !== "MetricRecorded" || event.data.labels.origin === "evaluation")
      return { state, emit: [] };
    let trends = state.trends;
    const emit = [];
    for (const rule of rules) {
      const value = valueFor(rule, event.data);
      if (value === undefined) continue;
      const labels = seriesLabels(event.data.labels);
      const key = seriesKey(event.data.programId, rule, labels);
      const before = trends[key];
      const { trend, crossing, judgedAgainst } = observe(rule, before, value);
      let open = before?.open;
      if (crossing) {
        const alert = alertOf(crossing, rule, trend, judgedAgainst, open, event, labels, ctx);
        emit.push(alert);
        open = crossing === "raised" ? { alertId: alert.id, raisedAt: alert.occurredAt } : undefined;
      }
      trends = { ...trends, [key]: open ? { ...trend, open } : trend };
    }
    return { state: { trends }, emit };
  },
});
