import type { ErrorKind } from "../../streams/events/index.ts";

export interface CircuitPolicy {
  /** Failures within `windowMs` that open the circuit. */
  failureThreshold: number;
  windowMs: number;
  /** How long an open circuit refuses calls before it lets one probe through. */
  cooldownMs: number;
}

export const defaultCircuitPolicy: CircuitPolicy = {
  failureThreshold: 5,
  windowMs: 60_000,
  cooldownMs: 30_000,
};

export type Circuit =
  | { status: "closed"; failures: readonly number[] }
  | { status: "open"; openedAt: number }
  | { status: "half-open"; probe: string; since: number };

export const closedCircuit: Circuit = { status: "closed", failures: [] };

/** Errors that say something about the model's health (a bad request or a parse error doesn't). */
export const countsAgainstModel = (kind: ErrorKind): boolean =>
  kind === "lm_error" || kind === "rate_limit" || kind === "timeout" || kind === "internal";

export type Transition = "opened" | "half-opened" | "closed" | undefined;

export const recordFailure = (
  circuit: Circuit,
  now: number,
  policy: CircuitPolicy,
): { circuit: Circuit; transition: Transition } => {
  if (circuit.status === "half-open")
    return { circuit: { status: "open", openedAt: now }, transition: "opened" };
  if (circuit.status === "open") return { circuit, transition: undefined };
  const failures = [...circuit.failures.filter((t) => now - t < policy.windowMs), now];
  return failures.length >= policy.failureThreshold
    ? { circuit: { status: "open", openedAt: now }, transition: "opened" }
    : { circuit: { status: "closed", failures }, transition: undefined };
};

export const recordSuccess = (circuit: Circuit): { circuit: Circuit; transition: Transition } =>
  circuit.status === "half-open"
    ? { circuit: closedCircuit, transition: "closed" }
    : { circuit, transition: undefined };

/** Whether a call may go to this model now; an open circuit past its cooldown lets `probe` through. */
export const admit = (
  circuit: Circuit,
  now: number,
  policy: CircuitPolicy,
  probe: string,
): { admitted: boolean; circuit: Circuit; transition: Transition } => {
  if (circuit.status === "closed") return { admitted: true, circuit, transition: undefined };
  if (circuit.status === "open" && now - circuit.openedAt >= policy.cooldownMs)
    return { admitted: true, circuit: { status: "half-open", probe, since: now }, transition: "half-opened" };
  // A probe that never reported back (its execution ended) must not keep the circuit half-open forever.
  if (circuit.status === "half-open" && now - circuit.since >= policy.cooldownMs)
    return { admitted: true, circuit: { status: "half-open", probe, since: now }, transition: undefined };
  return { admitted: false, circuit, transition: undefined };
};
