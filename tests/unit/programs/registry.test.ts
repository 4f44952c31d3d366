import { describe, expect, it } from "vitest";
import {
  decide,
  declareProgram,
  evolve,
  type RegistryCommand,
  RegistryError,
  type RegistryEvent,
  type VariableState,
} from "../../../programs/registry.ts";
import type { VariableDeclaration } from "../../../streams/events/variables.ts";

const temperature: VariableDeclaration = {
  name: "temperature",
  spec: { kind: "float", min: 0, max: 2, precision: 1 },
  initial: 0.7,
};
const id = "qa.temperature";
const at = "2026-01-01T00:00:00.000Z";

/** given events → state; when command → then the events' types and data. */
const given = (...commands: RegistryCommand[]) => {
  let state: VariableState | undefined;
  commands.forEach((command, i) => {
    for (const event of decide(state, command, { commandId: `c${i}`, occurredAt: at }))
      state = evolve(state, event);
  });
  const when = (command: RegistryCommand) => decide(state, command, { commandId: "when", occurredAt: at });
  return {
    state,
    when,
    expectThen: (command: RegistryCommand) => when(command).map((e) => [e.type, e.data]),
  };
};
const declare: RegistryCommand = {
  type: "declare",
  variableId: id,
  programId: "qa",
  declaration: temperature,
};
const set = (value: unknown, actor = "alice"): RegistryCommand => ({
  type: "set",
  variableId: id,
  value,
  actor,
  reason: "tuning",
});
const lease = (leaseId: string, holder = leaseId): RegistryCommand => ({
  type: "requestLease",
  variableId: id,
  leaseId,
  holder,
});
const release = (leaseId: string): RegistryCommand => ({ type: "releaseLease", variableId: id, leaseId });
const fold = (events: RegistryEvent[], from?: VariableState) =>
  events.reduce<VariableState | undefined>(evolve, from);

describe("variable registry: declare", () => {
  it("declares a variable at its initial value, version 0", () => {
    const events = given().when(declare);
    expect(events.map((e) => [e.type, e.data])).toEqual([
      ["VariableDeclared", { variableId: id, programId: "qa", declaration: temperature }],
    ]);
    expect(events[0]).toMatchObject({ stream: `variable-${id}`, key: id, occurredAt: at });
    expect(fold(events)).toMatchObject({ value: 0.7, version: 0, lease: null, queue: [], history: [] });
  });

  it("ignores a repeated identical declaration and rejects a different one", () => {
    expect(given(declare).expectThen(declare)).toEqual([]);
    expect(given(declare).expectThen({ ...declare, declaration: { ...temperature, initial: 1 } })).toEqual([
      [
        "VariableChangeRejected",
        {
          variableId: id,
          value: 1,
          actor: "registry",
          reason: `${id} is already declared with a different declaration`,
        },
      ],
    ]);
  });

  it("rejects a declaration whose initial value breaks its own spec", () => {
    expect(given().expectThen({ ...declare, declaration: { ...temperature, initial: 3 } })).toEqual([
      [
        "VariableChangeRejected",
        {
          variableId: id,
          value: 3,
          actor: "registry",
          reason: "temperature must be between 0 and 2 (got 3)",
        },
      ],
    ]);
  });

  it("gives the same event ids for the same command id", () => {
    expect(given().when(declare)[0]!.id).toBe(given().when(declare)[0]!.id);
  });

  it("declares every program and stage variable under its registry id", () => {
    const commands = declareProgram({
      programId: "qa",
      variables: [temperature],
      stages: [{ id: "answer", variables: [{ ...temperature, name: "top_p" }] } as never],
    });
    expect(commands.map((c) => c.variableId)).toEqual(["qa.temperature", "qa.answer.top_p"]);
  });
});

describe("variable registry: set and propose", () => {
  it("changes the value with the previous value, the next version, the actor and the reason", () => {
    const { state, expectThen } = given(declare, set(1.2));
    expect(state).toMatchObject({ value: 1.2, version: 1 });
    expect(expectThen(set(0.4, "bob"))).toEqual([
      [
        "VariableChanged",
        { variableId: id, value: 0.4, previous: 1.2, version: 2, actor: "bob", reason: "tuning" },
      ],
    ]);
  });

  it("keeps the history of changes, newest last", () => {
    const { state } = given(declare, set(1), set(1.5, "bob"));
    expect(state!.history.map((h) => [h.version, h.value, h.actor])).toEqual([
      [1, 1, "alice"],
      [2, 1.5, "bob"],
    ]);
  });

  it.each([
    [2.5, "temperature must be between 0 and 2 (got 2.5)"],
    [0.25, "temperature must have at most 1 decimal place (got 0.25)"],
    ["hot", 'temperature must be a number (got "hot")'],
  ])("rejects %j with its reason and keeps the value", (value, reason) => {
    const { state, when } = given(declare);
    const events = when(set(value));
    expect(events.map((e) => [e.type, e.data])).toEqual([
      ["VariableChangeRejected", { variableId: id, value, actor: "alice", reason }],
    ]);
    expect(fold(events, state)).toMatchObject({
      value: 0.7,
      version: 0,
      rejections: 1,
      lastRejection: { reason },
    });
  });

  it("rejects changes to an unknown variable and to a composite", () => {
    expect(given().expectThen(set(1))).toEqual([
      [
        "VariableChangeRejected",
        { variableId: id, value: 1, actor: "alice", reason: `unknown variable "${id}"` },
      ],
    ]);
    const composite: RegistryCommand = {
      type: "declare",
      variableId: id,
      declaration: {
        name: "budget",
        spec: { kind: "composite", dependsOn: ["a", "b"], compute: "sum" },
        initial: null,
      },
    };
    expect(given(composite).expectThen(set(1))[0]![1]).toMatchObject({
      reason: "budget is computed from a, b and cannot be set",
    });
  });

  it("emits nothing when the value is already the current one", () => {
    expect(given(declare).expectThen(set(0.7))).toEqual([]);
  });

  it("lets only the lease holder change a leased variable, and proposals need the active lease", () => {
    const leased = given(declare, lease("L1", "opt-1"));
    expect(leased.expectThen(set(1, "alice"))[0]![1]).toMatchObject({
      reason: "temperature is leased to opt-1 (lease L1); wait for its release",
    });
    expect(leased.expectThen(set(1, "opt-1"))[0]![0]).toBe("VariableChanged");
    const propose = (leaseId: string): RegistryCommand => ({
      type: "propose",
      variableId: id,
      value: 1.1,
      actor: "opt",
      leaseId,
      provenance: { optimizationId: "o1", scoreBefore: 0.5, scoreAfter: 0.7 },
    });
    expect(leased.expectThen(propose("L1"))).toEqual([
      [
        "VariableChanged",
        {
          variableId: id,
          value: 1.1,
          previous: 0.7,
          version: 1,
          actor: "opt",
          reason: "",
          provenance: { optimizationId: "o1", scoreBefore: 0.5, scoreAfter: 0.7 },
        },
      ],
    ]);
    expect(leased.expectThen(propose("L2"))[0]![1]).toMatchObject({
      reason: "temperature is leased to opt-1 (lease L1), not lease L2",
    });
    expect(given(declare).expectThen(propose("L1"))[0]![1]).toMatchObject({
      reason: "temperature has no active lease; request one before proposing",
    });
  });
});

describe("variable registry: leases", () => {
  it("grants a free variable at once", () => {
    expect(given(declare).expectThen(lease("L1"))).toEqual([
      ["VariableLeaseRequested", { variableId: id, leaseId: "L1", holder: "L1" }],
      ["VariableLeaseGranted", { variableId: id, leaseId: "L1", holder: "L1" }],
    ]);
  });

  it("queues a second request and grants it when the first releases", () => {
    const { state, expectThen } = given(declare, lease("L1"), lease("L2"), lease("L3"));
    expect(state).toMatchObject({ lease: { leaseId: "L1" }, queue: [{ leaseId: "L2" }, { leaseId: "L3" }] });
    expect(expectThen(release("L1"))).toEqual([
      ["VariableLeaseReleased", { variableId: id, leaseId: "L1", holder: "L1" }],
      ["VariableLeaseGranted", { variableId: id, leaseId: "L2", holder: "L2" }],
    ]);
    expect(given(declare, lease("L1"), lease("L2"), lease("L3"), release("L1")).state).toMatchObject({
      lease: { leaseId: "L2" },
      queue: [{ leaseId: "L3" }],
    });
  });

  it("withdraws a waiting request without touching the holder", () => {
    const { state } = given(declare, lease("L1"), lease("L2"), lease("L3"), release("L2"));
    expect(state).toMatchObject({ lease: { leaseId: "L1" }, queue: [{ leaseId: "L3" }] });
  });

  it("frees the variable when the last holder releases", () => {
    expect(given(declare, lease("L1"), release("L1")).state).toMatchObject({ lease: null, queue: [] });
  });

  it("ignores repeated requests and releases of unknown leases", () => {
    expect(given(declare, lease("L1")).expectThen(lease("L1"))).toEqual([]);
    expect(given(declare, lease("L1"), lease("L2")).expectThen(lease("L2"))).toEqual([]);
    expect(given(declare).expectThen(release("nope"))).toEqual([]);
  });

  it("refuses a lease on an undeclared variable", () => {
    expect(() => given().when(lease("L1"))).toThrow(RegistryError);
  });
});

describe("variable registry: concurrent writers (the log's order decides)", () => {
  it("given two writers that decided a change against the same version, when both land, then the first wins and the second folds as a conflict", () => {
    const { state } = given(declare, set(1));
    const first = decide(state, set(1.5, "alice"), { commandId: "a", occurredAt: at });
    const second = decide(state, set(0.2, "bob"), { commandId: "b", occurredAt: at });
    expect(second[0]!.data).toMatchObject({ version: 2 });
    const after = fold([...first, ...second], state);
    expect(after).toMatchObject({ value: 1.5, version: 2, rejections: 1 });
    expect(after!.history.map((change) => [change.version, change.actor])).toEqual([
      [1, "alice"],
      [2, "alice"],
    ]);
    expect(after!.lastRejection).toMatchObject({ value: 0.2, actor: "bob" });
    expect(after!.lastRejection!.reason).toBe(
      "conflict: this change was decided as version 2, but temperature was at version 2 (another writer changed it first); decide again against the current value",
    );
  });

  it("given two optimizers granted a free variable at once, when both grants land in any order, then the first grant holds it and the other waits", () => {
    const { state } = given(declare);
    const [requestA, grantA] = decide(state, lease("A"), { commandId: "a" });
    const [requestB, grantB] = decide(state, lease("B"), { commandId: "b" });
    for (const order of [
      [requestA!, grantA!, requestB!, grantB!],
      [requestA!, requestB!, grantA!, grantB!],
      [requestB!, requestA!, grantA!, grantB!],
    ])
      expect(fold(order, state)).toMatchObject({ lease: { leaseId: "A" }, queue: [{ leaseId: "B" }] });
  });

  it("given a request the holder had not seen, when the holder releases, then the request holds the variable", () => {
    const { state } = given(declare);
    const granted = decide(state, lease("A"), { commandId: "a" });
    const stale = fold(granted, state);
    const both = fold(decide(state, lease("B"), { commandId: "b" }), stale);
    const released = decide(stale, release("A"), { commandId: "r" });
    expect(released.map((e) => e.type)).toEqual(["VariableLeaseReleased"]);
    expect(fold(released, both)).toMatchObject({ lease: { leaseId: "B" }, queue: [] });
  });
});
