/**
 * Change detection on one series of a program's metrics: an exponentially weighted moving average of the
 * recent values (fast) against a baseline that follows the series slowly, frozen while an alert is open.
 * The alert rises when the fast average moves `threshold` away from the baseline in the watched
 * direction and clears when it is back within half of that (hysteresis: no flapping at the edge).
 */
export interface TrendRule {
  /** The program it watches (default: every program). */
  programId?: string;
  /**
   * A MetricRecorded name, or a failure rate the processor derives: `execution.failure_rate` (1 per failed
   * execution, 0 per completed one) or `stage.failure_rate` (the same per stage and model).
   */
  metric: string;
  /** Which way is bad: a score going down, a latency or failure rate going up. */
  direction: "down" | "up";
  /** How far from the baseline raises the alert: absolute, or a fraction of the baseline when `relative`. */
  threshold: number;
  relative: boolean;
  /** Weight of a new value in the fast average. */
  alpha: number;
  /** Weight of a new value in the baseline once warmed up. */
  baselineAlpha: number;
  /** Values before anything is judged; the baseline starts as their mean. */
  warmup: number;
}

export const defaultTrendRule = {
  direction: "down",
  relative: false,
  alpha: 0.3,
  baselineAlpha: 0.02,
  warmup: 10,
} as const satisfies Partial<TrendRule>;

export interface Trend {
  observations: number;
  /** The fast average. */
  current: number;
  baseline: number;
  /** The open alert: its AlertRaised's id and time. */
  open?: { alertId: string; raisedAt: string };
}

export type Crossing = "raised" | "cleared" | undefined;

/** How far the series has moved the bad way, and how far it may move. */
export const gapOf = (rule: TrendRule, trend: Trend): { gap: number; limit: number } => ({
  gap: rule.direction === "down" ? trend.baseline - trend.current : trend.current - trend.baseline,
  limit: rule.relative ? rule.threshold * Math.abs(trend.baseline) : rule.threshold,
});

/**
 * The series after one more value, and whether that value crossed the threshold either way. A value is
 * judged against the baseline before it; the baseline takes it in only while no alert is open.
 */
export const observe = (
  rule: TrendRule,
  before: Trend | undefined,
  value: number,
): { trend: Omit<Trend, "open">; crossing: Crossing; judgedAgainst: number } => {
  const observations = (before?.observations ?? 0) + 1;
  const current = before ? before.current + rule.alpha * (value - before.current) : value;
  const previous = before?.baseline ?? value;
  if (observations <= rule.warmup)
    return {
      trend: { observations, current, baseline: previous + (value - previous) / observations },
      crossing: undefined,
      judgedAgainst: previous,
    };
  const { gap, limit } = gapOf(rule, { observations, current, baseline: previous });
  const crossing = before?.open
    ? gap <= limit / 2
      ? "cleared"
      : undefined
    : gap > limit
      ? "raised"
      : undefined;
  const frozen = crossing === "raised" || (before?.open && crossing !== "cleared");
  const baseline = frozen ? previous : previous + rule.baselineAlpha * (value - previous);
  return { trend: { observations, current, baseline }, crossing, judgedAgainst: previous };
};
