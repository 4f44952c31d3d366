export {
  describeEndpoint,
  type ExportTotals,
  type OtelExport,
  type OtelExportOptions,
  readableSpanOf,
  startOtelExport,
} from "./export.ts";
export { type MetricPoint, metricPointOf } from "./metrics.ts";
export {
  executionSpans,
  type SpanDraft,
  type SpanOptions,
  spanIdOf,
  traceIdOf,
  withoutPayloads,
} from "./spans.ts";
