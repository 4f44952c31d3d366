import { afterEach, describe, expect, it } from "vitest";
import { commandAnswered, issueCommand, startRegistry } from "../../processors/registry/registry.ts";
import type { RunningProcessor } from "../../processors/runtime/index.ts";
import type { VariableState } from "../../programs/registry.ts";
import { projectionRunner, variablesProjection } from "../../projections/index.ts";
import type { DspexEvent, VariableCommand } from "../../streams/events/index.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { backendsUnderTest, skippedHere } from "../support/backends.ts";

const id = "qa.temperature";
const declaration = {
  name: "temperature",
  spec: { kind: "float" as const, min: 0, max: 2, precision: 1 },
  initial: 0.7,
};

/** The events the registry answered a command with, once `count` of them are on the log. */
const answerTo = async (log: EventLog, commandId: string, count: number): Promise<DspexEvent[]> => {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const answers = (await readEvents(log, Topics.variables))
      .flatMap((r) => ("event" in r ? [r.event] : []))
      .filter((event) => event.causationId === commandId);
    if (answers.length >= count) return answers;
    if (Date.now() > deadline)
      throw new Error(`no answer to ${commandId} (got ${answers.length} of ${count})`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

const backends = backendsUnderTest.filter((b) => b.name === "embedded" || b.name === "kafka");

describe.each(backends)("registry processor on the $name log", (backend) => {
  if (skippedHere(backend)) return;
  const running: RunningProcessor<unknown>[] = [];
  const logs: EventLog[] = [];
  afterEach(async () => {
    for (const processor of running.splice(0)) await processor.stop();
    for (const log of logs.splice(0)) await log.close();
  });

  it("answers commands with registry events, queues leases, and resumes its state after a restart", async () => {
    const config = backend.freshConfig();
    const log = await openLog(config);
    logs.push(log);
    const first = startRegistry(log, { maxBatch: 50 });
    running.push(first);
    await first.ready;
    const ask = async (command: VariableCommand, answers = 1) => {
      const issued = await issueCommand(log, command);
      return (await answerTo(log, issued.id, answers)).map((e) => [e.type, e.data] as const);
    };

    expect((await ask({ command: "declare", variableId: id, programId: "qa", declaration }))[0]![0]).toBe(
      "VariableDeclared",
    );
    expect(
      await ask({ command: "set", variableId: id, value: 1.2, actor: "alice", reason: "warmer" }),
    ).toEqual([
      [
        "VariableChanged",
        { variableId: id, value: 1.2, previous: 0.7, version: 1, actor: "alice", reason: "warmer" },
      ],
    ]);
    expect(await ask({ command: "set", variableId: id, value: 7, actor: "alice" })).toEqual([
      [
        "VariableChangeRejected",
        { variableId: id, value: 7, actor: "alice", reason: "temperature must be between 0 and 2 (got 7)" },
      ],
    ]);
    const lease = (leaseId: string): VariableCommand => ({
      command: "requestLease",
      variableId: id,
      leaseId,
      holder: `optimizer:${leaseId}`,
    });
    expect((await ask(lease("o1"), 2)).map(([type]) => type)).toEqual([
      "VariableLeaseRequested",
      "VariableLeaseGranted",
    ]);
    expect((await ask(lease("o2"))).map(([type]) => type)).toEqual(["VariableLeaseRequested"]);

    // A fresh processor rebuilds its state from what the group committed: versions and the queue go on.
    await first.stop();
    running.splice(0);
    const second = startRegistry(log, { maxBatch: 50 });
    running.push(second);
    await second.ready;
    expect(
      await ask({
        command: "propose",
        variableId: id,
        value: 0.3,
        actor: "optimizer:o1",
        leaseId: "o1",
        reason: "trial 4",
      }),
    ).toEqual([
      [
        "VariableChanged",
        { variableId: id, value: 0.3, previous: 1.2, version: 2, actor: "optimizer:o1", reason: "trial 4" },
      ],
    ]);
    expect(await ask({ command: "releaseLease", variableId: id, leaseId: "o1" }, 2)).toEqual([
      ["VariableLeaseReleased", { variableId: id, leaseId: "o1", holder: "optimizer:o1" }],
      ["VariableLeaseGranted", { variableId: id, leaseId: "o2", holder: "optimizer:o2" }],
    ]);

    // The variables projection, replayed from the log, agrees with the processor.
    const runner = projectionRunner({ name: "registry-check", log, projections: [variablesProjection] });
    await runner.rebuild();
    const folded = runner.state<VariableState>("variables").get(id);
    expect(folded).toMatchObject({
      value: 0.3,
      version: 2,
      rejections: 1,
      lease: { leaseId: "o2" },
      queue: [],
    });
    expect(folded).toEqual(second.states().get(0)!.variables.get(id));
  });

  it("resolves a command with its answer (commandAnswered), and times out with no processor running", async () => {
    const log = await openLog(backend.freshConfig());
    logs.push(log);
    await expect(
      commandAnswered(log, { command: "declare", variableId: id, declaration }, 300),
    ).rejects.toMatchObject({ name: "TimeoutError" });
    const registry = startRegistry(log);
    running.push(registry);
    await registry.ready;
    // The declaration issued while no processor ran is decided now, before the commands below.
    const changed = await commandAnswered(log, { command: "set", variableId: id, value: 1.5, actor: "ops" });
    expect([changed.type, changed.data]).toEqual([
      "VariableChanged",
      { variableId: id, value: 1.5, previous: 0.7, version: 1, actor: "ops", reason: "" },
    ]);
    const refused = await commandAnswered(log, { command: "set", variableId: id, value: -1, actor: "ops" });
    expect(refused.data).toMatchObject({ reason: "temperature must be between 0 and 2 (got -1)" });
  });
});
