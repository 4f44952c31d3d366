import { describe, expect, it } from "vitest";
import {
  emptyRegistryState,
  handleRegistry,
  nextExpiry,
  type RegistryState,
  registryTick,
  restoreRegistry,
  snapshotOfRegistry,
} from "../../../processors/registry/registry.ts";
import type { Envelope } from "../../../streams/envelope.ts";
import {
  type DspexEvent,
  ProgramRegistered,
  VariableChanged,
  type VariableCommand,
  VariableCommandIssued,
  type VariableDeclaration,
} from "../../../streams/events/index.ts";
import { derivedId } from "../../../streams/ids.ts";
import { Topics } from "../../../streams/topics.ts";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const id = "qa.temperature";
const temperature: VariableDeclaration = {
  name: "temperature",
  spec: { kind: "float", min: 0, max: 2, precision: 1 },
  initial: 0.7,
};

let n = 0;
const issued = (command: VariableCommand) =>
  VariableCommandIssued.create({
    id: derivedId("test", `command-${n++}`),
    stream: `variable-${command.variableId}`,
    key: command.variableId,
    data: command,
  });
const declare = (variableId = id): VariableCommand => ({
  command: "declare",
  variableId,
  programId: "qa",
  declaration: temperature,
});
const set = (value: unknown, actor = "alice"): VariableCommand => ({
  command: "set",
  variableId: id,
  value: value as never,
  actor,
  reason: "tuning",
});
const requestLease = (leaseId: string): VariableCommand => ({
  command: "requestLease",
  variableId: id,
  leaseId,
  holder: `optimizer:${leaseId}`,
});
const propose = (value: number, leaseId: string): VariableCommand => ({
  command: "propose",
  variableId: id,
  value,
  actor: `optimizer:${leaseId}`,
  leaseId,
  provenance: { optimizationId: leaseId, scoreBefore: 0.5, scoreAfter: 0.8 },
});
const release = (leaseId: string): VariableCommand => ({ command: "releaseLease", variableId: id, leaseId });

const ctxAt = (now: number) => ({
  now,
  source: { topic: Topics.variables, partition: 0, offset: 0 },
  consumer: "dspex-registry",
});

/** given inputs (commands or events) → when one more → then what it `emits`; state carried along. */
const scenario = (...inputs: DspexEvent[]) => {
  let state: RegistryState = emptyRegistryState;
  let at = T0;
  const when = (input: DspexEvent, now = at++): Envelope[] => {
    const output = handleRegistry(state, input, ctxAt(now));
    state = output.state;
    return output.emit;
  };
  for (const input of inputs) when(input);
  return {
    when,
    emits: (input: DspexEvent, now?: number) => when(input, now).map((e) => [e.type, e.data] as const),
    /** Time passing: what the tick issues, each fed back as the next input (as the log would). */
    tick: (now: number) => {
      const output = registryTick(state, now);
      state = output.state;
      return output.emit as DspexEvent[];
    },
    get state() {
      return state;
    },
  };
};

describe("registry processor", () => {
  it("declares a variable from a command, caused by it, with an id derived from it", () => {
    const command = issued(declare());
    const emitted = scenario().when(command);
    expect(emitted.map((e) => e.type)).toEqual(["VariableDeclared"]);
    expect(emitted[0]).toMatchObject({
      id: derivedId(command.id, "declared"),
      key: id,
      causationId: command.id,
      correlationId: command.correlationId,
      occurredAt: new Date(T0).toISOString(),
      data: { variableId: id, programId: "qa", declaration: temperature },
    });
  });

  it("changes a value with previous, version, actor and reason", () => {
    const s = scenario(issued(declare()));
    expect(s.emits(issued(set(1.2)))).toEqual([
      [
        "VariableChanged",
        { variableId: id, value: 1.2, previous: 0.7, version: 1, actor: "alice", reason: "tuning" },
      ],
    ]);
    expect(s.emits(issued(set(0.4, "bob")))).toEqual([
      [
        "VariableChanged",
        { variableId: id, value: 0.4, previous: 1.2, version: 2, actor: "bob", reason: "tuning" },
      ],
    ]);
    expect(s.state.variables.get(id)).toMatchObject({ value: 0.4, version: 2 });
  });

  it("rejects an invalid value with its reason and keeps the current one (no default slipped in)", () => {
    const s = scenario(issued(declare()), issued(set(1.5)));
    expect(s.emits(issued(set(2.5)))).toEqual([
      [
        "VariableChangeRejected",
        {
          variableId: id,
          value: 2.5,
          actor: "alice",
          reason: "temperature must be between 0 and 2 (got 2.5)",
        },
      ],
    ]);
    expect(s.emits(issued(set("hot")))).toEqual([
      [
        "VariableChangeRejected",
        {
          variableId: id,
          value: "hot",
          actor: "alice",
          reason: expect.stringMatching(/temperature must be a number/),
        },
      ],
    ]);
    expect(s.state.variables.get(id)).toMatchObject({ value: 1.5, version: 1, rejections: 2 });
  });

  it("rejects changes to an unknown variable, and a lease on one, with the reason", () => {
    const s = scenario();
    expect(s.emits(issued(set(1)))).toEqual([
      [
        "VariableChangeRejected",
        { variableId: id, value: 1, actor: "alice", reason: `unknown variable "${id}"` },
      ],
    ]);
    expect(s.emits(issued(requestLease("o1")))).toEqual([
      [
        "VariableChangeRejected",
        {
          variableId: id,
          value: null,
          actor: "optimizer:o1",
          reason: `unknown variable "${id}": declare it before leasing`,
        },
      ],
    ]);
  });

  it("grants one lease at a time; a second request queues and is granted on release", () => {
    const s = scenario(issued(declare()));
    expect(s.emits(issued(requestLease("o1"))).map(([type]) => type)).toEqual([
      "VariableLeaseRequested",
      "VariableLeaseGranted",
    ]);
    expect(s.emits(issued(requestLease("o2"))).map(([type]) => type)).toEqual(["VariableLeaseRequested"]);
    expect(s.state.variables.get(id)).toMatchObject({
      lease: { leaseId: "o1" },
      queue: [{ leaseId: "o2", holder: "optimizer:o2" }],
    });
    // Only the lease holder may propose; others are told who holds it.
    expect(s.emits(issued(propose(1.1, "o2")))[0]).toEqual([
      "VariableChangeRejected",
      expect.objectContaining({
        reason: "temperature is leased to optimizer:o1 (lease o1), not lease o2",
      }),
    ]);
    expect(s.emits(issued(set(1.1, "alice")))[0]![1]).toMatchObject({
      reason: "temperature is leased to optimizer:o1 (lease o1); wait for its release",
    });
    expect(s.emits(issued(propose(1.1, "o1")))).toEqual([
      [
        "VariableChanged",
        {
          variableId: id,
          value: 1.1,
          previous: 0.7,
          version: 1,
          actor: "optimizer:o1",
          reason: "",
          provenance: { optimizationId: "o1", scoreBefore: 0.5, scoreAfter: 0.8 },
        },
      ],
    ]);
    expect(s.emits(issued(release("o1")))).toEqual([
      ["VariableLeaseReleased", { variableId: id, leaseId: "o1", holder: "optimizer:o1" }],
      ["VariableLeaseGranted", { variableId: id, leaseId: "o2", holder: "optimizer:o2" }],
    ]);
    expect(s.state.variables.get(id)).toMatchObject({ lease: { leaseId: "o2" }, queue: [] });
  });

  it("emits nothing for a repeated declaration or an unchanged value", () => {
    const s = scenario(issued(declare()));
    expect(s.when(issued(declare()))).toEqual([]);
    expect(s.when(issued(set(0.7)))).toEqual([]);
  });

  it("does not fold its own events twice when they come back as input", () => {
    const s = scenario();
    const declared = s.when(issued(declare()));
    const changed = s.when(issued(set(1.0)));
    const leased = s.when(issued(requestLease("o1")));
    expect(s.state.expected.size).toBe(4);
    for (const event of [...declared, ...changed, ...leased]) expect(s.when(event as DspexEvent)).toEqual([]);
    expect(s.state.expected.size).toBe(0);
    expect(s.state.variables.get(id)).toMatchObject({
      value: 1.0,
      version: 1,
      history: [expect.objectContaining({ value: 1.0 })],
      lease: { leaseId: "o1" },
      queue: [],
    });
  });

  it("folds registry events other writers appended, and decides the next command on them", () => {
    const s = scenario(issued(declare()));
    const foreign = VariableChanged.create({
      stream: `variable-${id}`,
      key: id,
      data: { variableId: id, value: 1.9, previous: 0.7, version: 1, actor: "optimizer:x", reason: "won" },
    });
    expect(s.when(foreign)).toEqual([]);
    expect(s.emits(issued(set(0.1)))).toEqual([
      [
        "VariableChanged",
        { variableId: id, value: 0.1, previous: 1.9, version: 2, actor: "alice", reason: "tuning" },
      ],
    ]);
  });

  it("saves its state as JSON for a snapshot and decides the same after restoring it", () => {
    const s = scenario(issued(declare()), issued(set(1.2)), issued(requestLease("o1")));
    const restored = restoreRegistry(JSON.parse(JSON.stringify(snapshotOfRegistry(s.state))));
    expect(restored.variables).toEqual(s.state.variables);
    expect(restored.expected).toEqual(s.state.expected);
    const next = issued(set(0.4, "optimizer:o1"));
    expect(handleRegistry(restored, next, ctxAt(T0)).emit).toEqual(
      handleRegistry(s.state, next, ctxAt(T0)).emit,
    );
  });

  it("refuses a command event without a value with a clear error", () => {
    expect(() =>
      VariableCommandIssued.create({
        stream: `variable-${id}`,
        key: id,
        data: { command: "set", variableId: id, actor: "alice" } as never,
      }),
    ).toThrow(/invalid VariableCommandIssued event: data.value/);
  });

  describe("leases that cannot outlive their holder", () => {
    const leased = (leaseId: string, ttlMs = 30_000): VariableCommand => ({
      command: "requestLease",
      variableId: id,
      leaseId,
      holder: `optimizer:${leaseId}`,
      ttlMs,
    });

    it("given a lease with a time to live, when it is not renewed, then the tick expires it and the next in line gets it", () => {
      const s = scenario(issued(declare()));
      s.when(issued(leased("o1")), T0);
      s.when(issued(leased("o2")), T0 + 10_000);
      expect(nextExpiry(s.state)).toBe(T0 + 30_000);
      expect(s.tick(T0 + 29_999)).toEqual([]);
      const [expire] = s.tick(T0 + 30_000);
      expect(expire?.type).toBe("VariableCommandIssued");
      expect(s.tick(T0 + 30_001)).toEqual([]);
      expect(s.emits(expire!, T0 + 30_010)).toEqual([
        [
          "VariableLeaseReleased",
          {
            variableId: id,
            leaseId: "o1",
            holder: "optimizer:o1",
            ttlMs: 30_000,
            reason: `expired: optimizer:o1 did not renew it within 30000 ms (last at ${new Date(T0).toISOString()})`,
          },
        ],
        ["VariableLeaseGranted", { variableId: id, leaseId: "o2", holder: "optimizer:o2", ttlMs: 30_000 }],
      ]);
      // The new holder's time to live starts at its grant.
      expect(nextExpiry(s.state)).toBe(T0 + 60_010);
    });

    it("given a renewal ordered before the expiry command, then the lease stays", () => {
      const s = scenario(issued(declare()));
      s.when(issued(leased("o1")), T0);
      const [expire] = s.tick(T0 + 30_000);
      expect(s.emits(issued({ command: "renewLease", variableId: id, leaseId: "o1" }), T0 + 29_000)).toEqual([
        ["VariableLeaseRenewed", { variableId: id, leaseId: "o1" }],
      ]);
      expect(s.emits(expire!, T0 + 30_001)).toEqual([]);
      expect(s.state.variables.get(id)?.lease?.leaseId).toBe("o1");
      expect(nextExpiry(s.state)).toBe(T0 + 59_000);
    });

    it("given a request waiting in line that is not renewed, then it expires too and the holder keeps its lease", () => {
      const s = scenario(issued(declare()));
      s.when(issued(leased("o1", 60_000)), T0);
      s.when(issued(leased("o2")), T0 + 1_000);
      const [expire] = s.tick(T0 + 31_000);
      expect(
        s.emits(expire!, T0 + 31_000).map(([type, data]) => [type, (data as { leaseId: string }).leaseId]),
      ).toEqual([["VariableLeaseReleased", "o2"]]);
      expect(s.state.variables.get(id)?.lease?.leaseId).toBe("o1");
      expect(s.state.variables.get(id)?.queue).toEqual([]);
    });

    it("given an operator release with a reason, then the lease goes with the reason", () => {
      const s = scenario(issued(declare()), issued(leased("o1")));
      expect(
        s.emits(
          issued({ command: "releaseLease", variableId: id, leaseId: "o1", reason: "operator: stuck run" }),
        ),
      ).toEqual([
        [
          "VariableLeaseReleased",
          {
            variableId: id,
            leaseId: "o1",
            holder: "optimizer:o1",
            ttlMs: 30_000,
            reason: "operator: stuck run",
          },
        ],
      ]);
      expect(nextExpiry(s.state)).toBeUndefined();
    });

    it("given a lease that is gone, when its holder renews it, then the renewal is refused with the reason", () => {
      const s = scenario(issued(declare()));
      const [answer] = s.emits(issued({ command: "renewLease", variableId: id, leaseId: "o9" }));
      expect(answer![0]).toBe("VariableChangeRejected");
      expect((answer![1] as { reason: string }).reason).toBe(
        `lease o9 on ${id} is neither held nor waiting: it expired or was released`,
      );
    });
  });

  it("dead-letters a registered program that cannot run, with the reason", () => {
    const cyclic = ProgramRegistered.create({
      stream: "program-loop",
      key: "loop",
      data: {
        programId: "loop",
        version: 1,
        inputs: [{ name: "q", type: "str", optional: false }],
        outputs: { out: "a.x" },
        stages: [
          {
            id: "a",
            runtime: "dspy",
            module: "Predict",
            signature: {
              instructions: "",
              inputs: [{ name: "q", type: "str", optional: false }],
              outputs: [{ name: "x", type: "str", optional: false }],
            },
            dependsOn: ["b"],
          },
          {
            id: "b",
            runtime: "dspy",
            module: "Predict",
            signature: {
              instructions: "",
              inputs: [{ name: "x", type: "str", optional: false }],
              outputs: [{ name: "q", type: "str", optional: false }],
            },
            dependsOn: ["a"],
          },
        ],
      },
    });
    const [letter] = scenario().when(cyclic);
    expect(letter!.type).toBe("DeadLettered");
    expect((letter!.data as { reason: string }).reason).toBe(
      "program cannot run: stages form a cycle: a → b → a",
    );
  });
});
