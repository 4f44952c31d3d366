import { z } from "zod";
import { Topics } from "../topics.ts";
import { Id } from "./common.ts";
import { defineEvent } from "./define.ts";

export const MetricRecorded = defineEvent("MetricRecorded", {
  topic: Topics.metrics,
  data: z.object({
    programId: Id,
    name: z.string().min(1),
    value: z.number(),
    unit: z.string().default(""),
    labels: z.record(z.string(), z.string()).default({}),
    executionId: Id.optional(),
  }),
});

// The metrics dspex records itself, and the series the alerts processor derives from them.

/** What the pipeline records once per execution (its labels say how it ended and where it came from). */
export const executionMetric = "execution.duration_ms";
/** The series the alerts processor derives from `executionMetric`: 1 per failed execution, 0 per completed one. */
export const failureRateMetric = "execution.failure_rate";
/** What the pipeline records once per finished stage (labels: stage, status, model, adapter, error). */
export const stageMetric = "stage.duration_ms";
/** What a stage's LM calls cost, when the provider prices them (labels: stage, model). */
export const stageCostMetric = "stage.cost_usd";
/** The series derived from `stageMetric`, per stage and model: 1 per failed stage, 0 per completed one. */
export const stageFailureRateMetric = "stage.failure_rate";
/** What an optimization records when it completes (its labels name it). */
export const optimizationMetric = "optimization.completed";

/** Which series of a program's metrics an alert is about, and what its detector saw. */
const AlertFigures = z.object({
  /** The id of the AlertRaised that opened the alert (on AlertRaised: its own id). */
  alertId: Id,
  programId: Id,
  /** The watched series: a MetricRecorded name, or `execution.failure_rate` (derived from the executions). */
  metric: z.string().min(1),
  /** The labels that split the series (stage, model), as recorded. */
  labels: z.record(z.string(), z.string()).default({}),
  method: z.enum(["ewma"]),
  direction: z.enum(["down", "up"]),
  /** What the series was expected to be (its slow average before the change). */
  baseline: z.number(),
  /** What it is now (its fast average). */
  current: z.number(),
  /** How far from the baseline raises the alert (half of it clears it). */
  threshold: z.number().nonnegative(),
  /** Observations of the series so far. */
  observations: z.number().int().positive(),
});

/** A watched series moved away from its baseline; caused by the MetricRecorded that crossed the threshold. */
export const AlertRaised = defineEvent("AlertRaised", { topic: Topics.metrics, data: AlertFigures });

/** The series came back; caused by the MetricRecorded that crossed back (`alertId` names its AlertRaised). */
export const AlertCleared = defineEvent("AlertCleared", {
  topic: Topics.metrics,
  data: AlertFigures.extend({ raisedAt: z.iso.datetime({ offset: true }) }),
});

export const metricEvents = [MetricRecorded, AlertRaised, AlertCleared] as const;
