import { filter, firstValueFrom, map, timeout } from "rxjs";
import { isRegistryEvent } from "../../programs/register.ts";
import {
  type CommandMeta,
  decide,
  evolve,
  type RegistryCommand,
  RegistryError,
  type RegistryEvent,
  type VariableState,
} from "../../programs/registry.ts";
import { decodeRecord } from "../../streams/codec.ts";
import type { Envelope } from "../../streams/envelope.ts";
import {
  type DspexEvent,
  type EventOf,
  VariableChangeRejected,
  type VariableCommand,
  VariableCommandIssued,
} from "../../streams/events/index.ts";
import { derivedId, newId } from "../../streams/ids.ts";
import type { EventLog } from "../../streams/log.ts";
import { appendEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import {
  type Output,
  type Processor,
  type ProcessorContext,
  type RuntimeOptions,
  runProcessor,
} from "../runtime.ts";

/**
 * The registry's state: every variable folded from `dspex.variables`, and the ids of the events this
 * processor emitted but has not read back yet (it folds its own events when it decides them, so the next
 * command sees them; when they come back as input they are not folded twice).
 */
export interface RegistryState {
  variables: ReadonlyMap<string, VariableState>;
  expected: ReadonlySet<string>;
}

export const emptyRegistryState: RegistryState = { variables: new Map(), expected: new Set() };

type CommandIssued = EventOf<"VariableCommandIssued">;

/** The wire form of a command as the pure registry takes it. */
export const commandOf = (data: VariableCommand): RegistryCommand => {
  const { command, ...rest } = data;
  return { type: command, ...rest } as RegistryCommand;
};

/** The refusal of a command the registry cannot even consider (a lease on an unknown variable). */
const refusal = (issued: CommandIssued, meta: CommandMeta, reason: string): RegistryEvent =>
  VariableChangeRejected.create({
    id: derivedId(issued.id, "rejected"),
    stream: `variable-${issued.data.variableId}`,
    key: issued.data.variableId,
    occurredAt: meta.occurredAt,
    correlationId: meta.correlationId,
    causationId: meta.causationId,
    data: {
      variableId: issued.data.variableId,
      value: "value" in issued.data ? (issued.data.value ?? null) : null,
      actor:
        "actor" in issued.data
          ? issued.data.actor
          : "holder" in issued.data
            ? issued.data.holder
            : "registry",
      reason,
    },
  });

/** Decides one command against the variable's state: the events it produces (ids derived from the command). */
export const decideCommand = (
  state: VariableState | undefined,
  issued: CommandIssued,
  now: number,
): RegistryEvent[] => {
  const meta: CommandMeta = {
    commandId: issued.id,
    occurredAt: new Date(now).toISOString(),
    correlationId: issued.correlationId,
    causationId: issued.id,
  };
  try {
    return decide(state, commandOf(issued.data), meta);
  } catch (error) {
    if (error instanceof RegistryError) return [refusal(issued, meta, error.message)];
    throw error;
  }
};

const fold = (
  variables: ReadonlyMap<string, VariableState>,
  events: readonly RegistryEvent[],
): ReadonlyMap<string, VariableState> => {
  if (events.length === 0) return variables;
  const next = new Map(variables);
  for (const event of events) {
    const folded = evolve(next.get(event.data.variableId), event);
    if (folded) next.set(event.data.variableId, folded);
  }
  return next;
};

/** One input: a command is decided (and its events folded at once); other registry events are folded. */
export const handleRegistry = (
  state: RegistryState,
  event: DspexEvent,
  ctx: Pick<ProcessorContext, "now">,
): Output<RegistryState> => {
  if (event.type === "VariableCommandIssued") {
    const emitted = decideCommand(state.variables.get(event.data.variableId), event, ctx.now);
    if (emitted.length === 0) return { state, emit: [] };
    const expected = new Set(state.expected);
    for (const e of emitted) expected.add(e.id);
    return { state: { variables: fold(state.variables, emitted), expected }, emit: emitted };
  }
  if (!isRegistryEvent(event)) return { state, emit: [] };
  if (state.expected.has(event.id)) {
    const expected = new Set(state.expected);
    expected.delete(event.id);
    return { state: { variables: state.variables, expected }, emit: [] };
  }
  return { state: { variables: fold(state.variables, [event]), expected: state.expected }, emit: [] };
};

export const registryProcessorName = "dspex-registry";

interface SavedRegistry {
  variables: [string, VariableState][];
  expected: string[];
}

/** The state as JSON for a processor snapshot (Maps and Sets as arrays), and back. */
export const snapshotOfRegistry = (state: RegistryState): SavedRegistry => ({
  variables: [...state.variables],
  expected: [...state.expected],
});

export const restoreRegistry = (saved: unknown): RegistryState => {
  const { variables, expected } = saved as SavedRegistry;
  return { variables: new Map(variables), expected: new Set(expected) };
};

/**
 * The variable registry as a processor on `dspex.variables`: `VariableCommandIssued` in; `VariableDeclared`,
 * `VariableChanged`, `VariableChangeRejected` and lease events out, each caused by its command.
 */
export const registryProcessor = (name = registryProcessorName): Processor<RegistryState> => ({
  name,
  topics: [Topics.variables],
  initialState: emptyRegistryState,
  handle: handleRegistry,
  version: 2,
  snapshotOf: snapshotOfRegistry,
  restore: restoreRegistry,
});

/** Starts the registry processor on a log (the pipeline, the demo and the CLI can run it beside theirs). */
export const startRegistry = (log: EventLog, runtime: RuntimeOptions = {}, name = registryProcessorName) =>
  runProcessor(log, registryProcessor(name), runtime);

/** Publishes a command for the registry processor; its answer is caused by (and correlated with) this event. */
export const issueCommand = async (
  log: EventLog,
  command: VariableCommand,
  options: { id?: string; correlationId?: string; causationId?: string } = {},
): Promise<CommandIssued> => {
  const issued = VariableCommandIssued.create({
    stream: `variable-${command.variableId}`,
    key: command.variableId,
    data: command,
    ...options,
  });
  await appendEvents(log, [issued as Envelope]);
  return issued;
};

/**
 * Issues a command and resolves with the first event the registry processor answered it with: rejects after
 * `timeoutMs` without one (no registry processor running). A command that changes nothing (the current value
 * again, a repeated lease request) gets no answer: check the state before issuing those.
 */
export const commandAnswered = async (
  log: EventLog,
  command: VariableCommand,
  timeoutMs = 30_000,
): Promise<RegistryEvent> => {
  const id = newId();
  // Subscribed before the command is appended, from the end: the answer can't be missed.
  const answer = firstValueFrom(
    log.tail([Topics.variables], { from: "end" }).pipe(
      map((record) => decodeRecord(record)),
      filter((decoded) => decoded.ok && decoded.event.causationId === id),
      map((decoded) => (decoded as { ok: true; event: RegistryEvent }).event),
      timeout({ first: timeoutMs }),
    ),
  );
  answer.catch(() => undefined);
  await issueCommand(log, command, { id });
  return answer;
};
