import { causedBy } from "../../streams/envelope.ts";
import { type EventOf, VariableCommandIssued } from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import { Topics } from "../../streams/topics.ts";
import { registryTable } from "../pipeline/pipeline.ts";
import type { Registry } from "../pipeline/registry.ts";
import type { Output, Processor, ProcessorContext } from "../runtime/index.ts";

/** On an alert of `metric` on a stage's model, move the stage's `model` variable to its next choice. */
export interface ModelFailover {
  /** The program it applies to (default: every program). */
  programId?: string;
  /** The alerts' series: e.g. `stage.duration_ms` (latency) or a quality score recorded per model. */
  metric: string;
}

/** The choice after `model` among the stage's `model` variable's choices, and the variable's id. */
export const nextModel = (
  registry: Registry,
  alert: EventOf<"AlertRaised">["data"],
): { variableId: string; from: string; to: string } | undefined => {
  const { stage: stageId, model } = alert.labels;
  const entry = registry.programs[alert.programId];
  const stage = entry?.definition.stages.find((s) => s.id === stageId);
  const declaration = stage?.variables.find((v) => v.name === "model");
  if (!stageId || !model || !declaration) return undefined;
  const { spec } = declaration;
  if (spec.kind !== "choice" && spec.kind !== "module") return undefined;
  const variableId = `${alert.programId}.${stageId}.model`;
  const current = registry.variables[variableId]?.value ?? declaration.initial;
  const choices = spec.choices.map(String);
  const at = choices.indexOf(model);
  // Only while the stage still runs the model the alert is about, and when there is a next one.
  if (current !== model || at < 0 || at + 1 >= choices.length) return undefined;
  return { variableId, from: model, to: choices[at + 1]! };
};

const failover = (
  move: NonNullable<ReturnType<typeof nextModel>>,
  alert: EventOf<"AlertRaised">,
  ctx: ProcessorContext<Registry>,
) =>
  VariableCommandIssued.create({
    id: derivedId(alert.id, `failover/${move.to}`),
    stream: `variable-${move.variableId}`,
    key: move.variableId,
    occurredAt: new Date(ctx.now).toISOString(),
    ...causedBy(alert),
    data: {
      command: "set",
      variableId: move.variableId,
      value: move.to,
      actor: "dspex-failover",
      reason: `alert ${alert.id}: ${alert.data.metric} ${alert.data.direction === "up" ? "rose" : "fell"} to ${alert.data.current.toFixed(3)} from ${alert.data.baseline.toFixed(3)} on ${move.from}`,
    },
  });

/**
 * Model failover from alerts: an AlertRaised on a series of a stage's model (its labels name both) that a
 * policy watches moves that stage's `model` variable to the next of its choices, through the registry,
 * caused by the alert. Programs and variables come from dspex.variables, read whole (a table).
 */
export const failoverProcessor = (
  policies: readonly ModelFailover[],
  name = "dspex-failover",
): Processor<null, Registry> => ({
  name,
  topics: [Topics.metrics],
  initialState: null,
  table: registryTable,
  handle(state, event, ctx): Output<null> {
    if (event.type !== "AlertRaised") return { state, emit: [] };
    const watched = policies.some(
      (p) =>
        p.metric === event.data.metric && (p.programId === undefined || p.programId === event.data.programId),
    );
    const move = watched ? nextModel(ctx.table, event.data) : undefined;
    return { state, emit: move ? [failover(move, event, ctx)] : [] };
  },
});
