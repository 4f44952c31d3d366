import type { DspexEvent, ProgramDefinition } from "../../streams/events/index.ts";
import { levelsOf, programProblem, type VariableValue } from "./planner.ts";

/** A registered program: runnable with its levels, or refused with the reason. */
export type ProgramEntry =
  | { definition: ProgramDefinition; levels: string[][]; problem?: undefined }
  | { definition: ProgramDefinition; problem: string };

/** What the pipeline learns from `dspex.variables`: programs and the variables' current values. */
export interface Registry {
  programs: Readonly<Record<string, ProgramEntry>>;
  variables: Readonly<Record<string, VariableValue>>;
}

export const emptyRegistry: Registry = { programs: {}, variables: {} };

export const entryOf = (definition: ProgramDefinition): ProgramEntry => {
  const problem = programProblem(definition);
  return problem ? { definition, problem } : { definition, levels: levelsOf(definition.stages) };
};

/** Folds programs and variable changes; other events leave it as it is. */
export const foldRegistry = (registry: Registry, event: DspexEvent): Registry => {
  switch (event.type) {
    case "ProgramRegistered":
      return {
        ...registry,
        programs: { ...registry.programs, [event.data.programId]: entryOf(event.data) },
      };
    case "VariableDeclared": {
      if (registry.variables[event.data.variableId]) return registry;
      const declared = { value: event.data.declaration.initial, version: 1 };
      return { ...registry, variables: { ...registry.variables, [event.data.variableId]: declared } };
    }
    case "VariableChanged": {
      const known = registry.variables[event.data.variableId];
      // The registry numbers the first change 1, the same number a declared variable starts at here:
      // only an older change is stale (a redelivered one of the same version carries the same value).
      if (known && known.version > event.data.version) return registry;
      const changed = { value: event.data.value, version: event.data.version };
      return { ...registry, variables: { ...registry.variables, [event.data.variableId]: changed } };
    }
    default:
      return registry;
  }
};
