import type { Subscription } from "rxjs";
import type { VariableState } from "../../programs/registry.ts";
import { decodeRecord } from "../../streams/codec.ts";
import type { VariableCommand } from "../../streams/events/index.ts";
import { newId } from "../../streams/ids.ts";
import type { EventLog } from "../../streams/log.ts";
import { Topics } from "../../streams/topics.ts";
import { commandAnswered, issueCommand } from "../registry/registry.ts";
import type { OptimizationSetup } from "./setup.ts";

/** One optimizer per variable: the lease an optimization holds on each variable it changes. */
export const leaseOf = (optimizationId: string) => ({
  leaseId: `optimization-${optimizationId}`,
  holder: `optimizer:${optimizationId}`,
});

export interface LeaseOptions {
  /** How long a lease outlives its last renewal (the holder renews three times as often). */
  ttlMs?: number;
  /** How long to wait in line for variables another optimization holds. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const defaultLeaseTtlMs = 30_000;

/** The leases of one optimization, kept alive while it runs. */
export interface HeldLeases {
  /** Resolves once every target variable is leased; rejects on timeout or abort, its places in line given up. */
  held: Promise<void>;
  /** Aborts with the reason when a held lease is lost (it expired, or an operator released it). */
  lost: AbortSignal;
  /** Stops renewing; gives the leases (and places in line) back unless `keep` (a run that resumes soon). */
  end(options?: { keep?: boolean }): Promise<void>;
}

type LeaseState = "waiting" | "held" | "lost";

/**
 * Asks the registry (through its processor, as commands) to declare and lease the optimization's target
 * variables, waits in line for them, and renews every lease it holds or waits for: an optimization that
 * stops renewing (killed, hung) loses its leases after `ttlMs`, so no variable stays locked by the dead.
 */
export const holdLeases = (
  log: EventLog,
  setup: OptimizationSetup,
  registry: ReadonlyMap<string, VariableState>,
  options: LeaseOptions = {},
): HeldLeases => {
  const ttlMs = options.ttlMs ?? defaultLeaseTtlMs;
  const { leaseId, holder } = leaseOf(setup.optimizationId);
  const states = new Map<string, LeaseState>(
    setup.variables.map(({ variableId }) => [
      variableId,
      registry.get(variableId)?.lease?.leaseId === leaseId ? "held" : "waiting",
    ]),
  );
  const ours = new Set<string>();
  const lostController = new AbortController();
  let answered = false;
  let ending = false;
  let settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  const held = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  held.catch(() => undefined);

  const everyHeld = () => [...states.values()].every((s) => s === "held");
  /** A lease (or a place in line) taken away: the wait fails, or the run holding it must stop. */
  const lose = (variableId: string, reason: string) => {
    if (ending) return;
    states.set(variableId, "lost");
    const error = new Error(
      `optimization ${setup.optimizationId} lost its lease on ${variableId}: ${reason}`,
    );
    if (settle) settle.reject(error);
    else lostController.abort(error);
  };

  const answers: Subscription = log.tail([Topics.variables], { from: "end" }).subscribe({
    next: (record) => {
      const decoded = decodeRecord(record);
      if (!decoded.ok) return;
      const { event } = decoded;
      if (event.causationId && ours.has(event.causationId)) answered = true;
      switch (event.type) {
        case "VariableLeaseGranted":
          if (event.data.leaseId !== leaseId || !states.has(event.data.variableId)) return;
          states.set(event.data.variableId, "held");
          if (everyHeld()) settle?.resolve();
          return;
        case "VariableLeaseReleased":
          if (event.data.leaseId === leaseId && states.has(event.data.variableId))
            lose(event.data.variableId, event.data.reason ?? "released");
          return;
        case "VariableChangeRejected":
          if (event.causationId && ours.has(event.causationId) && states.has(event.data.variableId))
            lose(event.data.variableId, event.data.reason);
          return;
      }
    },
    // Without the answers no lease can be known held: the optimization stops rather than run unguarded.
    error: (error: Error) => {
      for (const variableId of states.keys())
        lose(variableId, `its lease answers stopped (${error.message})`);
    },
  });

  const command = async (data: VariableCommand) => {
    const id = newId();
    ours.add(id);
    await issueCommand(log, data, { id, correlationId: `optimization-${setup.optimizationId}` });
  };

  const renew = () =>
    Promise.all(
      [...states]
        .filter(([, state]) => state !== "lost")
        .map(([variableId]) => command({ command: "renewLease", variableId, leaseId })),
    );
  const renewal = setInterval(() => void renew().catch(() => undefined), Math.max(1, Math.floor(ttlMs / 3)));
  renewal.unref?.();

  /** Gives back what it holds or waits for, and waits until the registry took each back (once; later calls wait for it). */
  let ended: Promise<void> | undefined;
  const end = (options: { keep?: boolean } = {}): Promise<void> => {
    ended ??= endOnce(options);
    return ended;
  };
  const endOnce = async ({ keep = false }: { keep?: boolean }) => {
    ending = true;
    clearInterval(renewal);
    clearTimeout(giveUp);
    answers.unsubscribe();
    if (keep) return;
    await Promise.all(
      [...states]
        .filter(([, state]) => state !== "lost")
        .map(([variableId]) =>
          commandAnswered(log, { command: "releaseLease", variableId, leaseId }, ttlMs).catch(
            () => undefined,
          ),
        ),
    );
  };

  const giveUp = setTimeout(() => {
    const reason = answered
      ? "another optimization holds its variables"
      : "the registry did not answer: is the registry processor running (`dspex processors`)?";
    settle?.reject(
      new Error(
        `optimization ${setup.optimizationId}: gave up waiting ${options.timeoutMs ?? 60_000} ms for its leases; ${reason}`,
      ),
    );
  }, options.timeoutMs ?? 60_000);
  giveUp.unref?.();
  options.signal?.addEventListener("abort", () => settle?.reject(options.signal!.reason as Error), {
    once: true,
  });

  void (async () => {
    if (everyHeld()) {
      settle?.resolve();
      return;
    }
    for (const { variableId, declaration } of setup.variables) {
      if (!registry.has(variableId))
        await command({ command: "declare", variableId, programId: setup.programId, declaration });
      if (states.get(variableId) !== "held")
        await command({ command: "requestLease", variableId, leaseId, holder, ttlMs });
    }
  })().catch((error: Error) => settle?.reject(error));

  held.then(
    () => {
      settle = undefined;
      clearTimeout(giveUp);
    },
    () => {
      settle = undefined;
      void end();
    },
  );
  return { held, lost: lostController.signal, end };
};
