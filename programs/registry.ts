import type { EventOf } from "../streams/events/index.ts";
import {
  type ProgramDefinition,
  VariableChanged,
  VariableChangeRejected,
  type VariableDeclaration,
  VariableDeclared,
  VariableLeaseGranted,
  VariableLeaseReleased,
  VariableLeaseRenewed,
  VariableLeaseRequested,
} from "../streams/events/variables.ts";
import { derivedId } from "../streams/ids.ts";
import { checkDeclaration, jsonEqual, validateValue } from "./variables/types.ts";

/** The variable registry's decisions: commands in, events out; state is folded from those events. */

export interface Lease {
  leaseId: string;
  holder: string;
  /** Renewed at least this often or released by the registry (absent: it lasts until released). */
  ttlMs?: number;
  /** When it was requested, granted or renewed last (the event's time). */
  renewedAt?: string;
}

/** When a lease expires unless renewed before (ms since the epoch); undefined for a lease without a ttl. */
export const expiresAt = (lease: Lease): number | undefined =>
  lease.ttlMs === undefined || lease.renewedAt === undefined
    ? undefined
    : Date.parse(lease.renewedAt) + lease.ttlMs;

export interface VariableChange {
  version: number;
  value: unknown;
  actor: string;
  reason: string;
  at: string;
  optimizationId?: string;
}

export interface VariableState {
  variableId: string;
  programId?: string;
  declaration: VariableDeclaration;
  value: unknown;
  /** 0 after declaration; each accepted change adds one. */
  version: number;
  /** The latest changes, newest last (at most `historyLimit`); the log keeps them all. */
  history: VariableChange[];
  rejections: number;
  lastRejection?: { value: unknown; actor: string; reason: string; at: string };
  /** The optimizer holding the variable, and the ones waiting, in request order. */
  lease: Lease | null;
  queue: Lease[];
}

export const historyLimit = 100;

export type RegistryCommand =
  | { type: "declare"; variableId: string; programId?: string; declaration: VariableDeclaration }
  | { type: "set"; variableId: string; value: unknown; actor: string; reason?: string }
  | {
      type: "propose";
      variableId: string;
      value: unknown;
      actor: string;
      leaseId: string;
      reason?: string;
      provenance?: { optimizationId: string; scoreBefore?: number; scoreAfter?: number };
    }
  | { type: "requestLease"; variableId: string; leaseId: string; holder: string; ttlMs?: number }
  | { type: "renewLease"; variableId: string; leaseId: string }
  | { type: "releaseLease"; variableId: string; leaseId: string; reason?: string }
  | { type: "expireLease"; variableId: string; leaseId: string };

/** Where the events of a decision come from: a command id makes their ids deterministic. */
export interface CommandMeta {
  commandId?: string;
  occurredAt?: string;
  correlationId?: string;
  causationId?: string;
}

export type RegistryEvent = EventOf<
  | "VariableDeclared"
  | "VariableChanged"
  | "VariableChangeRejected"
  | "VariableLeaseRequested"
  | "VariableLeaseGranted"
  | "VariableLeaseRenewed"
  | "VariableLeaseReleased"
>;

/** Every event type the registry folds. */
export const registryEventTypes: readonly RegistryEvent["type"][] = [
  "VariableDeclared",
  "VariableChanged",
  "VariableChangeRejected",
  "VariableLeaseRequested",
  "VariableLeaseGranted",
  "VariableLeaseRenewed",
  "VariableLeaseReleased",
];

const envelope = (variableId: string, meta: CommandMeta, discriminator: string) => ({
  stream: `variable-${variableId}`,
  key: variableId,
  ...(meta.commandId ? { id: derivedId(meta.commandId, discriminator) } : {}),
  ...(meta.occurredAt ? { occurredAt: meta.occurredAt } : {}),
  ...(meta.correlationId ? { correlationId: meta.correlationId } : {}),
  ...(meta.causationId ? { causationId: meta.causationId } : {}),
});

const rejected = (variableId: string, value: unknown, actor: string, reason: string, meta: CommandMeta) => [
  VariableChangeRejected.create({
    ...envelope(variableId, meta, "rejected"),
    data: { variableId, value: (value ?? null) as never, actor, reason },
  }),
];

/** Why `actor` may not change the variable now, if it may not. */
const changeRefusal = (state: VariableState, command: RegistryCommand & { type: "set" | "propose" }) => {
  const { name, spec } = state.declaration;
  if (spec.kind === "composite")
    return `${name} is computed from ${spec.dependsOn.join(", ")} and cannot be set`;
  if (command.type === "propose") {
    if (!state.lease) return `${name} has no active lease; request one before proposing`;
    if (state.lease.leaseId !== command.leaseId)
      return `${name} is leased to ${state.lease.holder} (lease ${state.lease.leaseId}), not lease ${command.leaseId}`;
  } else if (state.lease && state.lease.holder !== command.actor) {
    return `${name} is leased to ${state.lease.holder} (lease ${state.lease.leaseId}); wait for its release`;
  }
  const check = validateValue(name, spec, command.value);
  return check.ok ? undefined : check.reason;
};

/** Decides what a command does to one variable (`state` undefined: not declared yet). */
export const decide = (
  state: VariableState | undefined,
  command: RegistryCommand,
  meta: CommandMeta = {},
): RegistryEvent[] => {
  const { variableId } = command;
  switch (command.type) {
    case "declare": {
      const { declaration } = command;
      if (state) {
        if (jsonEqual(state.declaration, declaration)) return [];
        return rejected(
          variableId,
          declaration.initial,
          "registry",
          `${variableId} is already declared with a different declaration`,
          meta,
        );
      }
      const check = checkDeclaration(declaration.name, declaration.spec, declaration.initial);
      if (!check.ok) return rejected(variableId, declaration.initial, "registry", check.reason, meta);
      return [
        VariableDeclared.create({
          ...envelope(variableId, meta, "declared"),
          data: { variableId, ...(command.programId ? { programId: command.programId } : {}), declaration },
        }),
      ];
    }
    case "set":
    case "propose": {
      if (!state)
        return rejected(variableId, command.value, command.actor, `unknown variable "${variableId}"`, meta);
      const refusal = changeRefusal(state, command);
      if (refusal) return rejected(variableId, command.value, command.actor, refusal, meta);
      if (jsonEqual(state.value, command.value)) return [];
      return [
        VariableChanged.create({
          ...envelope(variableId, meta, "changed"),
          data: {
            variableId,
            value: command.value as never,
            previous: (state.value ?? null) as never,
            version: state.version + 1,
            actor: command.actor,
            reason: command.reason ?? "",
            ...(command.type === "propose" && command.provenance ? { provenance: command.provenance } : {}),
          },
        }),
      ];
    }
    case "requestLease": {
      if (!state) throw new RegistryError(`unknown variable "${variableId}": declare it before leasing`);
      const lease = {
        variableId,
        leaseId: command.leaseId,
        holder: command.holder,
        ...(command.ttlMs !== undefined ? { ttlMs: command.ttlMs } : {}),
      };
      if (leaseNamed(state, lease.leaseId)) return [];
      const requested = VariableLeaseRequested.create({
        ...envelope(variableId, meta, "lease-requested"),
        data: lease,
      });
      if (state.lease || state.queue.length > 0) return [requested];
      return [
        requested,
        VariableLeaseGranted.create({ ...envelope(variableId, meta, "lease-granted"), data: lease }),
      ];
    }
    case "renewLease": {
      if (!state || !leaseNamed(state, command.leaseId))
        throw new RegistryError(
          `lease ${command.leaseId} on ${variableId} is neither held nor waiting: it expired or was released`,
        );
      return [
        VariableLeaseRenewed.create({
          ...envelope(variableId, meta, "lease-renewed"),
          data: { variableId, leaseId: command.leaseId },
        }),
      ];
    }
    case "releaseLease":
      return release(state, command.leaseId, command.reason, meta);
    case "expireLease": {
      const lease = state && leaseNamed(state, command.leaseId);
      const expiry = lease && expiresAt(lease);
      const now = meta.occurredAt === undefined ? Number.NaN : Date.parse(meta.occurredAt);
      // Renewed since the expiry was noticed (the log's order decides): it stays.
      if (expiry === undefined || !(now >= expiry)) return [];
      const reason = `expired: ${lease!.holder} did not renew it within ${lease!.ttlMs} ms (last at ${lease!.renewedAt})`;
      return release(state, command.leaseId, reason, meta);
    }
  }
};

/** The lease held or waited for under this id. */
const leaseNamed = (state: VariableState, leaseId: string): Lease | undefined =>
  state.lease?.leaseId === leaseId ? state.lease : state.queue.find((l) => l.leaseId === leaseId);

/** Releases a held or waiting lease; a held one passes to the first in line. */
const release = (
  state: VariableState | undefined,
  leaseId: string,
  reason: string | undefined,
  meta: CommandMeta,
): RegistryEvent[] => {
  if (!state) return [];
  const released = leaseNamed(state, leaseId);
  if (!released) return [];
  const { variableId } = state;
  const { renewedAt: _, ...lease } = released;
  const events: RegistryEvent[] = [
    VariableLeaseReleased.create({
      ...envelope(variableId, meta, "lease-released"),
      data: { variableId, ...lease, ...(reason !== undefined ? { reason } : {}) },
    }),
  ];
  const next = state.lease?.leaseId === leaseId ? state.queue[0] : undefined;
  if (next) {
    const { renewedAt: __, ...granted } = next;
    events.push(
      VariableLeaseGranted.create({
        ...envelope(variableId, meta, "lease-granted"),
        data: { variableId, ...granted },
      }),
    );
  }
  return events;
};

export class RegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RegistryError";
  }
}

/**
 * A copy to change (evolve never touches the state it was given). Every field is spelled out: every state
 * has one shape, and V8 copies it several times faster than `{ ...state, changes }` (replay throughput).
 */
const copyOf = (state: VariableState): VariableState => ({
  variableId: state.variableId,
  programId: state.programId,
  declaration: state.declaration,
  value: state.value,
  version: state.version,
  history: state.history,
  rejections: state.rejections,
  lastRejection: state.lastRejection,
  lease: state.lease,
  queue: state.queue,
});

const withoutLease = (queue: readonly Lease[], leaseId: string) => queue.filter((l) => l.leaseId !== leaseId);

/** The lease a request or grant event names, renewed at the event's time. */
const leaseOf = (event: EventOf<"VariableLeaseRequested" | "VariableLeaseGranted">): Lease => ({
  leaseId: event.data.leaseId,
  holder: event.data.holder,
  ...(event.data.ttlMs !== undefined ? { ttlMs: event.data.ttlMs, renewedAt: event.occurredAt } : {}),
});

/** Folds one registry event into the variable's state; events of undeclared variables change nothing. */
export const evolve = (state: VariableState | undefined, event: RegistryEvent): VariableState | undefined => {
  if (event.type === "VariableDeclared") {
    if (state) return state;
    const { variableId, programId, declaration } = event.data;
    return {
      variableId,
      ...(programId ? { programId } : {}),
      declaration,
      value: declaration.initial,
      version: 0,
      history: [],
      rejections: 0,
      lease: null,
      queue: [],
    };
  }
  if (!state) return state;
  switch (event.type) {
    case "VariableChanged": {
      const { value, version, actor, reason, provenance } = event.data;
      if (version !== state.version + 1)
        return withRejection(state, value, actor, conflictOf(state, version), event.occurredAt);
      const change: VariableChange = {
        version,
        value,
        actor,
        reason,
        at: event.occurredAt,
        ...(provenance ? { optimizationId: provenance.optimizationId } : {}),
      };
      const next = copyOf(state);
      next.value = value;
      next.version = version;
      // One copy per change (the history is bounded, but a change must not touch the previous state's).
      next.history = state.history.slice(state.history.length >= historyLimit ? 1 : 0);
      next.history.push(change);
      return next;
    }
    case "VariableChangeRejected": {
      const { value, actor, reason } = event.data;
      return withRejection(state, value, actor, reason, event.occurredAt);
    }
    case "VariableLeaseRequested": {
      const { leaseId } = event.data;
      if (state.lease?.leaseId === leaseId || state.queue.some((l) => l.leaseId === leaseId)) return state;
      const next = copyOf(state);
      next.queue = [...state.queue, leaseOf(event)];
      return next;
    }
    case "VariableLeaseGranted": {
      const { leaseId } = event.data;
      if (state.lease?.leaseId === leaseId) {
        // Already its (the release before handed it over): its time to live starts at the grant.
        if (event.data.ttlMs === undefined) return state;
        const next = copyOf(state);
        next.lease = leaseOf(event);
        return next;
      }
      const next = copyOf(state);
      // Granted by a writer that had not seen the current holder: it waits its turn in the queue.
      if (state.lease) {
        if (!state.queue.some((l) => l.leaseId === leaseId)) next.queue = [...state.queue, leaseOf(event)];
        return next;
      }
      next.lease = { ...(state.queue.find((l) => l.leaseId === leaseId) ?? {}), ...leaseOf(event) };
      next.queue = withoutLease(state.queue, leaseId);
      return next;
    }
    case "VariableLeaseRenewed": {
      const { leaseId } = event.data;
      const renewed = (lease: Lease) =>
        lease.leaseId === leaseId ? { ...lease, renewedAt: event.occurredAt } : lease;
      if (!leaseNamed(state, leaseId)) return state;
      const next = copyOf(state);
      next.lease = state.lease && renewed(state.lease);
      next.queue = state.queue.map(renewed);
      return next;
    }
    case "VariableLeaseReleased": {
      const next = copyOf(state);
      if (state.lease?.leaseId !== event.data.leaseId) {
        next.queue = withoutLease(state.queue, event.data.leaseId);
        return next;
      }
      // The next in line holds it from here, whether or not the releaser's grant names it.
      next.lease = state.queue[0] ?? null;
      next.queue = state.queue.slice(1);
      return next;
    }
  }
};

const withRejection = (
  state: VariableState,
  value: unknown,
  actor: string,
  reason: string,
  at: string,
): VariableState => {
  const next = copyOf(state);
  next.rejections = state.rejections + 1;
  next.lastRejection = { value, actor, reason, at };
  return next;
};

/** Why a change of another version than the next one lost: its writer decided it against a stale state. */
const conflictOf = (state: VariableState, version: number): string =>
  `conflict: this change was decided as version ${version}, but ${state.declaration.name} was at version ${state.version} ` +
  "(another writer changed it first); decide again against the current value";

/** Registry ids of a program's variables: `<program>.<name>` and `<program>.<stage>.<name>`. */
export const programVariables = (
  program: Pick<ProgramDefinition, "programId" | "variables" | "stages">,
): { variableId: string; declaration: VariableDeclaration }[] => [
  ...program.variables.map((declaration) => ({
    variableId: `${program.programId}.${declaration.name}`,
    declaration,
  })),
  ...program.stages.flatMap((stage) =>
    stage.variables.map((declaration) => ({
      variableId: `${program.programId}.${stage.id}.${declaration.name}`,
      declaration,
    })),
  ),
];

/** The declare commands that put a registered program's variables into the registry. */
export const declareProgram = (
  program: Pick<ProgramDefinition, "programId" | "variables" | "stages">,
): RegistryCommand[] =>
  programVariables(program).map(({ variableId, declaration }) => ({
    type: "declare",
    variableId,
    programId: program.programId,
    declaration,
  }));
