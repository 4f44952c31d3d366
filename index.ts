/**
 * dspex, the library: `import { program, dspy, v, connect, startProcessors, startWorkers } from "dspex"`.
 * Everything a program's user needs is here; the `dspex` command is built on the same functions.
 */

export type { DspexConfig } from "./app/config.ts";
export {
  connect,
  type Dspex,
  type EvaluationDraft,
  type ExecutionResultOf,
  type OptimizationDraft,
} from "./app/connect.ts";
export { readExamples } from "./app/examples.ts";
export type { LogOptions } from "./app/log.ts";
export {
  executionSpans,
  type OtelExport,
  type OtelExportOptions,
  type SpanDraft,
  startOtelExport,
} from "./app/otel/index.ts";
export { type Replayed, readModels, replay } from "./app/replay.ts";
export {
  allProcessors,
  type ConfiguredLog,
  type ProcessorName,
  startProcessors,
  startWorkers,
} from "./app/services.ts";
export type { Metric } from "./processors/evaluation/metrics.ts";
export type { EvaluationOutcome, ExampleOutcome } from "./processors/evaluation/port.ts";
export type { Transform } from "./processors/native/index.ts";
export type { OptimizationResult, Progress as OptimizationProgress } from "./processors/optimizers/driver.ts";
export {
  dspy,
  type Fields,
  native,
  ProgramBuilder,
  ProgramDefinitionError,
  type ProgramOutputs,
  program,
  type StageOp,
  type StageOptions,
  type TypedProgram,
  type VariableDraft,
  v,
} from "./programs/builder.ts";
export type { VariableState } from "./programs/registry.ts";
export { SignatureSyntaxError, signature } from "./programs/signatures/index.ts";
export {
  type ExecutionView,
  type MetricsSummary,
  metricsOf,
  type SessionView,
  sessionsOf,
  stateHash,
} from "./projections/index.ts";
export type { ExecutionProgress, ExecutionResult, RequestDraft, StartAt } from "./streams/client.ts";
export type {
  DspexEvent,
  EventOf,
  Example,
  JsonRecord,
  MetricRef,
  ProgramDefinition,
} from "./streams/events/index.ts";
export type { EventLog, LogRecord } from "./streams/log.ts";
