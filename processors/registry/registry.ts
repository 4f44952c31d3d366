import { filter, firstValueFrom, map, timeout } from "rxjs";
import { isRegistryEvent } from "../../programs/register.ts";
import {
  type CommandMeta,
  decide,
  evolve,
  expiresAt,
  type Lease,
  type RegistryCommand,
  RegistryError,
  type RegistryEvent,
  type VariableState,
} from "../../programs/registry.ts";
import { decodeRecord } from "../../streams/codec.ts";
import type { Envelope } from "../../streams/envelope.ts";
import {
  DeadLettered,
  type DspexEvent,
  type EventOf,
  VariableChangeRejected,
  type VariableCommand,
  VariableCommandIssued,
} from "../../streams/events/index.ts";
import { derivedId, newId } from "../../streams/ids.ts";
import type { EventLog } from "../../streams/log.ts";
import { appendEvents, deadLetterContent } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { programProblem } from "../pipeline/planner.ts";
import {
  type Output,
  type Processor,
  type ProcessorContext,
  type RuntimeOptions,
  runProcessor,
} from "../runtime/index.ts";

/**
 * The registry's state: every variable folded from `dspex.variables`, and the ids of the events this
 * processor emitted but has not read back yet (it folds its own events when it decides them, so the next
 * command sees them; when they come back as input they are not folded twice).
 */
export interface RegistryState {
  variables: ReadonlyMap<string, VariableState>;
  expected: ReadonlySet<string>;
  /** When each lease with a time to live expires unless renewed, by `variable\0lease`. */
  expiries: ReadonlyMap<string, number>;
  /** Soft mark (not replayed): the expiry each lease had when the tick issued its expiry command. */
  expirySent?: ReadonlyMap<string, number>;
}

export const emptyRegistryState: RegistryState = {
  variables: new Map(),
  expected: new Set(),
  expiries: new Map(),
};

const expiryKey = (variableId: string, leaseId: string) => `${variableId}\u0000${leaseId}`;

const leasesOf = (variable: VariableState | undefined): Lease[] =>
  variable ? [...(variable.lease ? [variable.lease] : []), ...variable.queue] : [];

/** The expiry index after a variable changed from `before` to `after`. */
const reindex = (
  expiries: ReadonlyMap<string, number>,
  variableId: string,
  before: VariableState | undefined,
  after: VariableState | undefined,
): ReadonlyMap<string, number> => {
  if (before === after) return expiries;
  const old = leasesOf(before).filter((l) => expiresAt(l) !== undefined);
  const now = leasesOf(after).filter((l) => expiresAt(l) !== undefined);
  if (old.length === 0 && now.length === 0) return expiries;
  const next = new Map(expiries);
  for (const lease of old) next.delete(expiryKey(variableId, lease.leaseId));
  for (const lease of now) next.set(expiryKey(variableId, lease.leaseId), expiresAt(lease)!);
  return next;
};

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

/** The state with `events` folded into its variables (and their leases' expiries). */
const fold = (state: RegistryState, events: readonly RegistryEvent[]): RegistryState => {
  if (events.length === 0) return state;
  const variables = new Map(state.variables);
  let expiries = state.expiries;
  for (const event of events) {
    const before = variables.get(event.data.variableId);
    const folded = evolve(before, event);
    if (!folded) continue;
    variables.set(event.data.variableId, folded);
    expiries = reindex(expiries, event.data.variableId, before, folded);
  }
  return { ...state, variables, expiries };
};

/** A program that cannot run is dead-lettered when it is registered, with the reason. */
const refusedProgram = (
  event: EventOf<"ProgramRegistered">,
  problem: string,
  ctx: Pick<ProcessorContext, "now" | "source" | "consumer">,
): Envelope =>
  DeadLettered.create({
    id: derivedId(event.id, "dead-letter"),
    stream: `dlq-${Topics.variables}`,
    key: event.key,
    occurredAt: new Date(ctx.now).toISOString(),
    correlationId: event.correlationId,
    causationId: event.id,
    data: {
      source: {
        topic: ctx.source.topic,
        partition: ctx.source.partition,
        offset: String(ctx.source.offset),
        consumer: ctx.consumer,
      },
      ...deadLetterContent(`program cannot run: ${problem}`, event),
    },
  });

/**
 * One input: a command is decided (and its events folded at once); other registry events are folded; a
 * registered program that cannot run is dead-lettered (requests for it are rejected with the same reason).
 */
export const handleRegistry = (
  state: RegistryState,
  event: DspexEvent,
  ctx: Pick<ProcessorContext, "now" | "source" | "consumer">,
): Output<RegistryState> => {
  if (event.type === "ProgramRegistered") {
    const problem = programProblem(event.data);
    return { state, emit: problem ? [refusedProgram(event, problem, ctx)] : [] };
  }
  if (event.type === "VariableCommandIssued") {
    const emitted = decideCommand(state.variables.get(event.data.variableId), event, ctx.now);
    if (emitted.length === 0) return { state, emit: [] };
    const expected = new Set(state.expected);
    for (const e of emitted) expected.add(e.id);
    return { state: { ...fold(state, emitted), expected }, emit: emitted };
  }
  if (!isRegistryEvent(event)) return { state, emit: [] };
  if (state.expected.has(event.id)) {
    const expected = new Set(state.expected);
    expected.delete(event.id);
    return { state: { ...state, expected }, emit: [] };
  }
  return { state: fold(state, [event]), emit: [] };
};

/** Time passing: a lease past its time to live gets an `expireLease` command, decided when read back. */
export const registryTick = (state: RegistryState, now: number): Output<RegistryState> => {
  const emit: Envelope[] = [];
  let sent: Map<string, number> | undefined;
  for (const [key, at] of state.expiries) {
    if (at > now || state.expirySent?.get(key) === at) continue;
    const [variableId, leaseId] = key.split("\u0000") as [string, string];
    emit.push(
      VariableCommandIssued.create({
        id: derivedId(`lease/${key}`, `expire/${at}`),
        stream: `variable-${variableId}`,
        key: variableId,
        occurredAt: new Date(now).toISOString(),
        data: { command: "expireLease", variableId, leaseId },
      }),
    );
    sent ??= new Map(state.expirySent);
    sent.set(key, at);
  }
  return { state: sent ? { ...state, expirySent: sent } : state, emit };
};

/** When the next lease expires (one whose expiry was issued is left to the command). */
export const nextExpiry = (state: RegistryState): number | undefined => {
  let next: number | undefined;
  for (const [key, at] of state.expiries)
    if (state.expirySent?.get(key) !== at && (next === undefined || at < next)) next = at;
  return next;
};

export const registryProcessorName = "dspex-registry";

interface SavedRegistry {
  variables: [string, VariableState][];
  expected: string[];
  expiries: [string, number][];
}

/** The state as JSON for a processor snapshot (Maps and Sets as arrays), and back; soft marks are left out. */
export const snapshotOfRegistry = (state: RegistryState): SavedRegistry => ({
  variables: [...state.variables],
  expected: [...state.expected],
  expiries: [...state.expiries],
});

export const restoreRegistry = (saved: unknown): RegistryState => {
  const { variables, expected, expiries } = saved as SavedRegistry;
  return { variables: new Map(variables), expected: new Set(expected), expiries: new Map(expiries) };
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
  tick: registryTick,
  nextTickAt: nextExpiry,
  version: 3,
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
  cause: { correlationId?: string; causationId?: string } = {},
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
  await issueCommand(log, command, { id, ...cause });
  return answer;
};
