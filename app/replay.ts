import type { VariableState } from "../programs/registry.ts";
import {
  type AlertView,
  alertsProjection,
  type ExecutionView,
  executionsProjection,
  type MetricsEntity,
  metricsProjection,
  projectionRunner,
  type SessionEntity,
  sessionsProjection,
  variablesProjection,
} from "../projections/index.ts";
import type { EventLog } from "../streams/log.ts";

/** The read models every dspex process folds, in one replay. */
export const readModels = [
  variablesProjection,
  executionsProjection,
  sessionsProjection,
  metricsProjection,
  alertsProjection,
];

/** Every read model, rebuilt from the whole log: the state any process would reach. */
export interface Replayed {
  /** Events folded. */
  events: number;
  seconds: number;
  /** The variable registry: value, version, history, lease and queue per variable id. */
  variables: ReadonlyMap<string, VariableState>;
  /** Per execution id: status, stages, outputs, latency. */
  executions: ReadonlyMap<string, ExecutionView>;
  /** Sessions and the executions that belong to them (`sessionsOf` lists the sessions). */
  sessions: ReadonlyMap<string, SessionEntity>;
  /** Per program, stage and configuration (`metricsOf` summarizes them). */
  metrics: ReadonlyMap<string, MetricsEntity>;
  /** Every alert by id (`alertsOf` lists them, open ones first). */
  alerts: ReadonlyMap<string, AlertView>;
}

/**
 * Folds the log from its first event into every read model. `validated` (the default) checks each event
 * against its schema; `trusted` skips that for events this log validated when they were appended.
 */
export const replay = async (
  log: EventLog,
  options: { decode?: "validated" | "trusted" } = {},
): Promise<Replayed> => {
  const runner = projectionRunner({
    name: "replay",
    log,
    projections: readModels,
    decode: options.decode ?? "validated",
  });
  const started = process.hrtime.bigint();
  const events = await runner.rebuild();
  return {
    events,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    variables: runner.state<VariableState>(variablesProjection.name),
    executions: runner.state<ExecutionView>(executionsProjection.name),
    sessions: runner.state<SessionEntity>(sessionsProjection.name),
    metrics: runner.state<MetricsEntity>(metricsProjection.name),
    alerts: runner.state<AlertView>(alertsProjection.name),
  };
};
