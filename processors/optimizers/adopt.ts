import type { RegistryEvent, VariableState } from "../../programs/registry.ts";
import { jsonEqual } from "../../programs/variables/types.ts";
import type { EventLog } from "../../streams/log.ts";
import { commandAnswered } from "../registry/registry.ts";
import type { OptimizationResult } from "./driver.ts";
import { leaseOf } from "./leases.ts";
import type { OptimizationSetup } from "./setup.ts";

/**
 * Proposes an accepted winner's values under the optimization's leases, with provenance, and waits for the
 * registry's answers; a value the variable already has is not proposed again (a resumed run). Throws when
 * the registry refused one (a lease lost meanwhile), naming why.
 */
export const adoptWinner = async (
  log: EventLog,
  setup: OptimizationSetup,
  result: OptimizationResult,
  registry: ReadonlyMap<string, VariableState>,
  timeoutMs = 30_000,
): Promise<RegistryEvent[]> => {
  if (!result.accepted) return [];
  const { leaseId, holder } = leaseOf(setup.optimizationId);
  const provenance = {
    optimizationId: setup.optimizationId,
    scoreBefore: result.baselineScore,
    scoreAfter: result.bestScore,
  };
  const answers: RegistryEvent[] = [];
  for (const { variableId } of setup.variables) {
    if (!(variableId in result.bestConfig)) continue;
    const value = result.bestConfig[variableId];
    if (jsonEqual(registry.get(variableId)?.value, value)) continue;
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
        timeoutMs,
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
