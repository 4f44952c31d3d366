import type { DspexEvent } from "../streams/events/index.ts";
import { stateHash } from "./hash.ts";
import type { Projection } from "./projection.ts";

/** Latencies are counted in log buckets ~2% wide: percentiles within 2% without keeping every value. */
const BUCKET_BASE = 1.02;
const LOG_BASE = Math.log(BUCKET_BASE);
const bucketOf = (ms: number): number => (ms <= 1 ? 0 : Math.ceil(Math.log(ms) / LOG_BASE));
const bucketValue = (bucket: number): number => (bucket === 0 ? 1 : BUCKET_BASE ** bucket);

/** Count, sum, min and max of the values recorded under each metric name. */
export type RecordedMetrics = Record<string, { count: number; sum: number; min: number; max: number }>;

export const withRecorded = (recorded: RecordedMetrics, name: string, value: number): RecordedMetrics => {
  const seen = recorded[name];
  const next = seen
    ? {
        count: seen.count + 1,
        sum: seen.sum + value,
        min: Math.min(seen.min, value),
        max: Math.max(seen.max, value),
      }
    : { count: 1, sum: value, min: value, max: value };
  return { ...recorded, [name]: next };
};

export interface MetricsView {
  kind: "metrics";
  programId: string;
  /** `*` for the program as a whole, else a hash of the execution's variable overrides (`default`: none). */
  configuration: string;
  count: number;
  succeeded: number;
  failed: number;
  latency: Record<number, number>;
  calls: number;
  promptTokens: number;
  completionTokens: number;
  /** MetricRecorded values by name (program level only). */
  recorded: RecordedMetrics;
}

/** The configuration an execution ran with, known from its request. */
export interface RequestLink {
  kind: "request";
  configuration: string;
}

export type MetricsEntity = MetricsView | RequestLink;

export const configurationOf = (overrides: Readonly<Record<string, unknown>>): string =>
  Object.keys(overrides).length === 0 ? "default" : stateHash(overrides).slice(0, 16);

const programKey = (programId: string) => `program/${programId}`;
const configurationKey = (programId: string, configuration: string) =>
  `configuration/${programId}/${configuration}`;
const requestKey = (requestId: string) => `request/${requestId}`;

const empty = (programId: string, configuration: string): MetricsView => ({
  kind: "metrics",
  programId,
  configuration,
  count: 0,
  succeeded: 0,
  failed: 0,
  latency: {},
  calls: 0,
  promptTokens: 0,
  completionTokens: 0,
  recorded: {},
});

/** Per program and per configuration: count, success rate, latency percentiles, tokens. */
export const metricsProjection: Projection<MetricsEntity> = {
  name: "metrics",
  version: 1,
  types: ["ExecutionRequested", "ExecutionCompleted", "ExecutionFailed", "MetricRecorded"],
  keysOf: (event: DspexEvent, get) => {
    switch (event.type) {
      case "ExecutionRequested":
        return [requestKey(event.data.requestId)];
      case "ExecutionCompleted":
      case "ExecutionFailed": {
        const link = get(requestKey(event.data.requestId));
        const configuration = link?.kind === "request" ? link.configuration : "default";
        return [programKey(event.data.programId), configurationKey(event.data.programId, configuration)];
      }
      case "MetricRecorded":
        return [programKey(event.data.programId)];
      default:
        return [];
    }
  },
  evolve: (entity, event, key) => {
    if (event.type === "ExecutionRequested")
      return entity ?? { kind: "request", configuration: configurationOf(event.data.overrides) };
    if (entity?.kind === "request") return entity;
    if (event.type === "ExecutionCompleted" || event.type === "ExecutionFailed") {
      const view =
        entity ?? empty(event.data.programId, key.startsWith("program/") ? "*" : key.split("/").at(-1)!);
      const bucket = bucketOf(event.data.durationMs);
      const ok = event.type === "ExecutionCompleted";
      const { usage } = event.data;
      return {
        ...view,
        count: view.count + 1,
        succeeded: view.succeeded + (ok ? 1 : 0),
        failed: view.failed + (ok ? 0 : 1),
        latency: { ...view.latency, [bucket]: (view.latency[bucket] ?? 0) + 1 },
        calls: view.calls + usage.calls,
        promptTokens: view.promptTokens + usage.promptTokens,
        completionTokens: view.completionTokens + usage.completionTokens,
      };
    }
    if (event.type === "MetricRecorded") {
      const view = entity ?? empty(event.data.programId, "*");
      return { ...view, recorded: withRecorded(view.recorded, event.data.name, event.data.value) };
    }
    return entity;
  },
};

/** The latency below which `p` percent of executions finished (upper bucket bound, ±2%). */
export const latencyPercentile = (view: MetricsView, p: number): number => {
  if (view.count === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * view.count));
  let seen = 0;
  for (const bucket of Object.keys(view.latency)
    .map(Number)
    .sort((a, b) => a - b)) {
    seen += view.latency[bucket]!;
    if (seen >= rank) return bucketValue(bucket);
  }
  return Number.NaN;
};

export interface MetricsSummary {
  programId: string;
  configuration: string;
  count: number;
  successRate: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  promptTokens: number;
  completionTokens: number;
}

export const summarize = (view: MetricsView): MetricsSummary => ({
  programId: view.programId,
  configuration: view.configuration,
  count: view.count,
  successRate: view.count === 0 ? 0 : view.succeeded / view.count,
  latencyP50Ms: latencyPercentile(view, 50),
  latencyP95Ms: latencyPercentile(view, 95),
  promptTokens: view.promptTokens,
  completionTokens: view.completionTokens,
});

export const metricsOf = (state: ReadonlyMap<string, MetricsEntity>): MetricsSummary[] =>
  [...state.values()].filter((e): e is MetricsView => e.kind === "metrics").map(summarize);
