import { evolve, type RegistryEvent, registryEventTypes, type VariableState } from "../programs/registry.ts";
import type { Projection } from "./projection.ts";

/** The variable registry read model: value, version, recent history, lease and queue per variable id. */
export const variablesProjection: Projection<VariableState> = {
  name: "variables",
  version: 3,
  types: registryEventTypes,
  keysOf: (event) => [(event as RegistryEvent).data.variableId],
  evolve: (state, event) => evolve(state, event as RegistryEvent),
};
