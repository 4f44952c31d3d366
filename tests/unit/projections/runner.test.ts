import { afterEach, describe, expect, it } from "vitest";
import { decide, type RegistryCommand, type VariableState } from "../../../programs/registry.ts";
import {
  executionsProjection,
  memorySnapshotStore,
  projectionRunner,
  stateHash,
  type VariableUpdate,
  variables$,
  variablesProjection,
} from "../../../projections/index.ts";
import type { EventLog } from "../../../streams/log.ts";
import { openLog } from "../../../streams/open.ts";
import { appendEvents } from "../../../streams/store.ts";
import { Topics } from "../../../streams/topics.ts";
import { embeddedBackend } from "../../support/backends.ts";

const opened: EventLog[] = [];
const open = async () => {
  const log = await openLog(embeddedBackend.freshConfig());
  opened.push(log);
  return log;
};
afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close()));
});

/** Runs commands against a private fold of what it decided, appending the events (the registry processor's loop). */
const execute = async (log: EventLog, commands: RegistryCommand[]) => {
  const own = projectionRunner({ name: "writer", log, projections: [variablesProjection] });
  await own.start();
  for (const command of commands) {
    await appendEvents(log, decide(own.state<VariableState>("variables").get(command.variableId), command));
    await own.catchUp();
  }
};

const declare = (variableId: string): RegistryCommand => ({
  type: "declare",
  variableId,
  declaration: { name: "k", spec: { kind: "integer", min: 0, max: 100, step: 1 }, initial: 0 },
});
const set = (variableId: string, value: number): RegistryCommand => ({
  type: "set",
  variableId,
  value,
  actor: "t",
});

describe("projection runner on the embedded log", () => {
  it("catches up from its checkpoint, snapshots every N events and resumes from the snapshot", async () => {
    const log = await open();
    const snapshots = memorySnapshotStore();
    const options = { name: "vars", log, projections: [variablesProjection], snapshots, snapshotEvery: 3 };
    const runner = projectionRunner(options);
    await runner.start();
    await execute(log, [declare("a"), declare("b")]);
    expect(await runner.catchUp()).toBe(2);
    await execute(log, [set("a", 1), set("b", 2), set("a", 3), set("a", 200)]);
    expect(await runner.catchUp()).toBe(4);
    expect(runner.state<VariableState>("variables").get("a")).toMatchObject({
      value: 3,
      version: 2,
      rejections: 1,
    });
    expect(snapshots.saved.map((s) => s.events)).toEqual([3, 6]);
    expect(await runner.catchUp()).toBe(0);

    const resumed = projectionRunner(options);
    expect(await resumed.start()).toBe(0);
    expect(resumed.eventsApplied).toBe(6);
    expect(stateHash(resumed.state("variables"))).toBe(stateHash(runner.state("variables")));
  });

  it("folds small pages to the same state and checkpoint as one large page", async () => {
    const log = await open();
    const ids = Array.from({ length: 10 }, (_, i) => `v${i}`);
    await execute(log, [
      ...ids.map(declare),
      ...Array.from({ length: 90 }, (_, i) => set(ids[i % 10]!, i + 1)),
    ]);
    const paged = projectionRunner({ name: "paged", log, projections: [variablesProjection], batchSize: 7 });
    const whole = projectionRunner({ name: "whole", log, projections: [variablesProjection] });
    expect(await paged.start()).toBe(100);
    expect(await whole.start()).toBe(100);
    expect(stateHash(paged.state("variables"))).toBe(stateHash(whole.state("variables")));
    expect(paged.checkpoint()).toEqual(whole.checkpoint());
  });

  it("given a snapshot store that fails, when a run reaches a snapshot, then it fails with that error, its checkpoint at the last applied event", async () => {
    const log = await open();
    await execute(
      log,
      Array.from({ length: 30 }, (_, i) => declare(`v${i}`)),
    );
    const failing = { ...memorySnapshotStore(), save: async () => Promise.reject(new Error("disk full")) };
    const runner = projectionRunner({
      name: "failing",
      log,
      projections: [variablesProjection],
      snapshots: failing,
      snapshotEvery: 5,
      batchSize: 4,
    });
    await expect(runner.start()).rejects.toThrow("disk full");
    expect(runner.eventsApplied).toBe(5);
    expect(runner.checkpoint()).toEqual({ [`${Topics.variables}/0`]: 5 });
  });

  it("rebuilds from scratch to the same state, and ignores a snapshot of another projection version", async () => {
    const log = await open();
    const snapshots = memorySnapshotStore();
    const runner = projectionRunner({
      name: "r",
      log,
      projections: [variablesProjection],
      snapshots,
      snapshotEvery: 1,
    });
    await runner.start();
    await execute(log, [declare("a"), set("a", 5)]);
    await runner.catchUp();
    const before = stateHash(runner.state("variables"));
    expect(await runner.rebuild()).toBe(2);
    expect(stateHash(runner.state("variables"))).toBe(before);

    const newer = projectionRunner({
      name: "r",
      log,
      projections: [{ ...variablesProjection, version: variablesProjection.version + 1 }],
      snapshots,
    });
    expect(await newer.start()).toBe(2);
    expect(stateHash(newer.state("variables"))).toBe(before);
  });

  it("skips records that are not valid events and reports them", async () => {
    const log = await open();
    const invalid: string[] = [];
    const runner = projectionRunner({
      name: "r",
      log,
      projections: [variablesProjection, executionsProjection],
      onInvalid: (_, reason) => invalid.push(reason),
    });
    await log.append([{ topic: "dspex.variables", key: "x", value: "not json" }]);
    await appendEvents(log, decide(undefined, declare("a")));
    expect(await runner.start()).toBe(1);
    expect(invalid).toEqual([expect.stringContaining("value is not JSON")]);
    expect(runner.state("variables").has("a")).toBe(true);
  });

  it("reads every partition the log reports, in append order across partitions and topics", async () => {
    const log = await open();
    await log.ensureTopics([
      { topic: "dspex.variables", partitions: 5 },
      { topic: "dspex.executions", partitions: 3 },
    ]);
    const ids = Array.from({ length: 12 }, (_, i) => `v${i}`);
    await execute(log, ids.map(declare));
    // One change per variable, each in its own append: their order is only in the append times.
    for (const [i, id] of ids.entries()) {
      await new Promise((done) => setTimeout(done, 2));
      await execute(log, [set(id, i + 1)]);
    }
    expect(new Set((await log.read("dspex.variables")).map((r) => r.partition)).size).toBeGreaterThan(2);
    const runner = projectionRunner({
      name: "r",
      log,
      projections: [variablesProjection],
      decode: "trusted",
    });
    const order: string[] = [];
    const subscription = variables$(runner).subscribe((u) => {
      if (u.event.type === "VariableChanged") order.push(u.variableId);
    });
    expect(await runner.start()).toBe(24);
    subscription.unsubscribe();
    expect(order).toEqual(ids);
    expect(runner.state<VariableState>("variables").get("v11")).toMatchObject({ value: 12, version: 1 });
    expect(Object.values(runner.checkpoint()).reduce((a, b) => a + b, 0)).toBe(24);
  });

  it.each(["validated", "trusted"] as const)(
    "%s: skips types no projection folds by their header, unparsed",
    async (decode) => {
      const log = await open();
      const invalid: string[] = [];
      const runner = projectionRunner({
        name: "r",
        log,
        projections: [variablesProjection],
        decode,
        onInvalid: (_, reason) => invalid.push(reason),
      });
      await log.append([
        {
          topic: "dspex.variables",
          key: "p",
          value: "not json",
          headers: { "dspex-type": "ProgramRegistered" },
        },
        {
          topic: "dspex.variables",
          key: "a",
          value: "not json",
          headers: { "dspex-type": "VariableDeclared" },
        },
      ]);
      await appendEvents(log, decide(undefined, declare("a")));
      expect(await runner.start()).toBe(1);
      expect(invalid).toEqual([expect.stringContaining("value is not JSON")]);
    },
  );

  it("publishes variable changes on variables$ while following the log", async () => {
    const log = await open();
    const runner = projectionRunner({ name: "r", log, projections: [variablesProjection] });
    await runner.start();
    const updates: VariableUpdate[] = [];
    const subscription = variables$(runner).subscribe((u) => updates.push(u));
    const following = runner.follow();
    await execute(log, [declare("a")]);
    await expect.poll(() => updates.length).toBe(1);
    await execute(log, [set("a", 7)]);
    await expect.poll(() => updates.length).toBe(2);
    following.unsubscribe();
    subscription.unsubscribe();
    expect(updates.map((u) => [u.variableId, u.event.type, u.state?.value])).toEqual([
      ["a", "VariableDeclared", 0],
      ["a", "VariableChanged", 7],
    ]);
  });
});
