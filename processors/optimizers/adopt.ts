import type { RegistryEvent, VariableState } from "../../programs/registry.ts";
import { jsonEqual } from "../../programs/variables/types.ts";
import type { JsonRecord } from "../../streams/events/index.ts";
import type { EventLog } from "../../streams/log.ts";
import { commandAnswered } from "../registry/registry.ts";
import { type OptimizationResult, optimizationEventId } from "./driver.ts";
import { leaseOf } from "./leases.ts";
import { constraintBreaches, type OptimizationSetup } from "./setup.ts";

type Change = readonly [variableId: string, value: unknown];

/**
 * The winner's changes in an order whose every intermediate configuration keeps the program's constraints,
 * where the greedy choice finds one (each change proposed is one a request may meet before the next):
 * at each step the first change that keeps them, else the first left.
 */
export const adoptionOrder = (
  changes: readonly Change[],
  keeps: (applied: Readonly<Record<string, unknown>>) => boolean,
): Change[] => {
  const ordered: Change[] = [];
  const left = [...changes];
  let applied: Record<string, unknown> = {};
  while (left.length > 0) {
    const next = Math.max(
      0,
      left.findIndex(([id, value]) => keeps({ ...applied, [id]: value })),
    );
    const [change] = left.splice(next, 1) as [Change];
    ordered.push(change);
    applied = { ...applied, [change[0]]: change[1] };
  }
  return ordered;
};

/**
 * Proposes an accepted winner's values under the optimization's leases, with provenance, and waits for the
 * registry's answers; a value the variable already has is not proposed again (a resumed run). The proposals
 * are caused by the OptimizationCompleted (in the request's correlation). Throws when the registry refused
 * one (a lease lost meanwhile), naming why.
 */
export const adoptWinner = async (
  log: EventLog,
  setup: OptimizationSetup,
  result: OptimizationResult,
  registry: ReadonlyMap<string, VariableState>,
  options: { correlationId?: string; timeoutMs?: number } = {},
): Promise<RegistryEvent[]> => {
  if (!result.accepted) return [];
  const { leaseId, holder } = leaseOf(setup.optimizationId);
  const provenance = {
    optimizationId: setup.optimizationId,
    scoreBefore: result.baselineScore,
    scoreAfter: result.bestScore,
  };
  const changes = setup.variables.flatMap(({ variableId }): Change[] =>
    variableId in result.bestConfig &&
    !jsonEqual(registry.get(variableId)?.value, result.bestConfig[variableId])
      ? [[variableId, result.bestConfig[variableId]]]
      : [],
  );
  const keeps = (applied: Readonly<Record<string, unknown>>) =>
    constraintBreaches(setup, applied as JsonRecord).length === 0;
  const answers: RegistryEvent[] = [];
  for (const [variableId, value] of adoptionOrder(changes, keeps)) {
    answers.push(
      await commandAnswered(
        log,
        {
          command: "propose",
          variableId,
          value: value as never,
          actor: holder,
          leaseId,
          reason: `${setup.optimizer} optimization: dev score ${result.baselineScore.toFixed(3)} → ${result.bestScore.toFixed(3)}`,
          provenance,
        },
        options.timeoutMs,
        {
          causationId: optimizationEventId(setup.optimizationId, "completed"),
          correlationId: options.correlationId,
        },
      ),
    );
  }
  const refused = answers.flatMap((a) => (a.type === "VariableChangeRejected" ? [a.data.reason] : []));
  if (refused.length > 0)
    throw new Error(
      `optimization ${setup.optimizationId}: the registry refused its winner: ${refused.join("; ")}`,
    );
  return answers;
};
