import { type DspexEvent, type ProgramDefinition, ProgramRegistered } from "../streams/events/index.ts";
import { derivedId } from "../streams/ids.ts";
import type { EventLog } from "../streams/log.ts";
import { appendEvents, readEvents } from "../streams/store.ts";
import { Topics } from "../streams/topics.ts";
import {
  decide,
  declareProgram,
  evolve,
  type RegistryEvent,
  registryEventTypes,
  type VariableState,
} from "./registry.ts";

const registryTypes: ReadonlySet<string> = new Set(registryEventTypes);

export const isRegistryEvent = (event: DspexEvent): event is RegistryEvent => registryTypes.has(event.type);

/** Programs and variable states, folded from `dspex.variables`. */
export const readRegistry = async (log: EventLog) => {
  const programs = new Map<string, ProgramDefinition>();
  const variables = new Map<string, VariableState>();
  for (const result of await readEvents(log, Topics.variables)) {
    if (!("event" in result)) continue;
    const { event } = result;
    if (event.type === "ProgramRegistered") programs.set(event.data.programId, event.data);
    else if (isRegistryEvent(event)) {
      const next = evolve(variables.get(event.data.variableId), event);
      if (next) variables.set(event.data.variableId, next);
    }
  }
  return { programs, variables };
};

/**
 * Registers a program and declares its variables in the registry (a variable already declared the same
 * way is left as it is, so registering again changes nothing). Ids derive from the program and version.
 */
export const registerProgram = async (log: EventLog, program: ProgramDefinition): Promise<DspexEvent[]> => {
  const { variables } = await readRegistry(log);
  const commandId = `program/${program.programId}@${program.version}`;
  const events: DspexEvent[] = [
    ProgramRegistered.create({
      id: derivedId(commandId, "registered"),
      stream: `program-${program.programId}`,
      key: program.programId,
      data: program,
    }),
  ];
  for (const command of declareProgram(program)) {
    events.push(
      ...decide(variables.get(command.variableId), command, {
        commandId: `${commandId}/${command.variableId}`,
      }),
    );
  }
  await appendEvents(log, events);
  return events;
};
