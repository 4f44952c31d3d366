import { filter, map, type Observable } from "rxjs";
import type { VariableState } from "../programs/registry.ts";
import type { EntityChange, ProjectionRunner } from "./runner.ts";

export * from "./alerts.ts";
export * from "./executions.ts";
export * from "./hash.ts";
export * from "./metrics.ts";
export * from "./optimizations.ts";
export * from "./projection.ts";
export * from "./runner.ts";
export * from "./sessions.ts";
export * from "./snapshots.ts";
export * from "./traces.ts";
export * from "./variables.ts";

export interface VariableUpdate {
  variableId: string;
  state: VariableState | undefined;
  event: EntityChange["event"];
}

/** Every change of a variable's state (value, lease, queue) as the runner folds it. */
export const variables$ = (runner: ProjectionRunner): Observable<VariableUpdate> =>
  runner.changes$.pipe(
    filter((change) => change.projection === "variables"),
    map((change) => ({
      variableId: change.key,
      state: change.entity as VariableState | undefined,
      event: change.event,
    })),
  );
