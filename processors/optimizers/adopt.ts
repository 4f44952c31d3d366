import { decide, evolve, type RegistryEvent, type VariableState } from "../../programs/registry.ts";
import type { OptimizationResult } from "./driver.ts";
import type { OptimizationSetup } from "./setup.ts";

/** One optimizer per variable: the lease an optimization holds on each variable it changes. */
export const leaseOf = (optimizationId: string) => ({
  leaseId: `optimization-${optimizationId}`,
  holder: `optimizer:${optimizationId}`,
});

const fold = (states: Map<string, VariableState>, events: readonly RegistryEvent[]) => {
  for (const event of events) {
    const next = evolve(states.get(event.data.variableId), event);
    if (next) states.set(event.data.variableId, next);
  }
};

/** Declares the target variables the registry doesn't know yet, and asks for their leases. */
export const claimVariables = (
  registry: ReadonlyMap<string, VariableState>,
  setup: OptimizationSetup,
): RegistryEvent[] => {
  const states = new Map(registry);
  const { leaseId, holder } = leaseOf(setup.optimizationId);
  const events: RegistryEvent[] = [];
  for (const { variableId, declaration } of setup.variables) {
    const meta = { commandId: `optimization/${setup.optimizationId}/claim/${variableId}` };
    const declared = decide(
      states.get(variableId),
      { type: "declare", variableId, programId: setup.programId, declaration },
      meta,
    );
    fold(states, declared);
    const leased = decide(
      states.get(variableId),
      { type: "requestLease", variableId, leaseId, holder },
      meta,
    );
    fold(states, leased);
    events.push(...declared, ...leased);
  }
  return events;
};

/** Whether this optimization holds the lease of every variable it targets. */
export const holdsLeases = (
  registry: ReadonlyMap<string, VariableState>,
  setup: OptimizationSetup,
): boolean => {
  const { leaseId } = leaseOf(setup.optimizationId);
  return setup.variables.every((v) => registry.get(v.variableId)?.lease?.leaseId === leaseId);
};

/** The winner as `VariableChanged` events with provenance (only if accepted), then the leases released. */
export const adoptWinner = (
  registry: ReadonlyMap<string, VariableState>,
  setup: OptimizationSetup,
  result: OptimizationResult,
): RegistryEvent[] => {
  const states = new Map(registry);
  const { leaseId, holder } = leaseOf(setup.optimizationId);
  const events: RegistryEvent[] = [];
  const provenance = {
    optimizationId: setup.optimizationId,
    scoreBefore: result.baselineScore,
    scoreAfter: result.bestScore,
  };
  if (result.accepted) {
    for (const { variableId } of setup.variables) {
      if (!(variableId in result.bestConfig)) continue;
      const changed = decide(
        states.get(variableId),
        {
          type: "propose",
          variableId,
          value: result.bestConfig[variableId],
          actor: holder,
          leaseId,
          reason: `${setup.optimizer} optimization: dev score ${result.baselineScore.toFixed(3)} → ${result.bestScore.toFixed(3)}`,
          provenance,
        },
        { commandId: `optimization/${setup.optimizationId}/adopt/${variableId}` },
      );
      fold(states, changed);
      events.push(...changed);
    }
  }
  for (const { variableId } of setup.variables) {
    const released = decide(
      states.get(variableId),
      { type: "releaseLease", variableId, leaseId },
      { commandId: `optimization/${setup.optimizationId}/release/${variableId}` },
    );
    fold(states, released);
    events.push(...released);
  }
  return events;
};
