import { afterEach, describe, expect, it } from "vitest";
import {
  pipelineProcessor,
  pipelineSnapshot,
  registryTable,
  startPipeline,
} from "../../processors/pipeline/pipeline.ts";
import {
  type Processor,
  type RunningProcessor,
  rebuildTask,
  runProcessor,
} from "../../processors/runtime/index.ts";
import { memorySnapshotStore } from "../../projections/snapshots.ts";
import { createClient } from "../../streams/client.ts";
import { encodeEvent } from "../../streams/codec.ts";
import type { DspexEvent, EventOf } from "../../streams/events/index.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { appendEvents, readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { embeddedBackend } from "../support/backends.ts";
import { startTestExecutor } from "../support/test-executor.ts";
import { untilCaughtUp } from "../support/waits.ts";
import { completed, program, requested, stage } from "../unit/processors/fixtures.ts";

const qa = program(
  "qa",
  [
    stage("classify", { inputs: ["question"], outputs: ["topic"] }),
    stage("answer", { inputs: ["question", "topic"], outputs: ["answer"], dependsOn: ["classify"] }),
  ],
  { answer: "answer.answer" },
);

const waitFor = async (condition: () => Promise<boolean>, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((wake) => setTimeout(wake, 20));
  }
};

/** The embedded log's topics have one partition here: one task. */
const stateOf = <S>(running: RunningProcessor<S>) => running.states().get(0);
const rebuildState = <S, T>(log: EventLog, processor: Processor<S, T>, table: T, options = {}) =>
  rebuildTask(log, processor, 0, table, options);

/** The pipeline's table as a reader of the whole of dspex.variables sees it. */
const registryOf = async (log: EventLog) => {
  let registry = registryTable.initial;
  for (const { event } of await eventsOf(log, Topics.variables))
    registry = registryTable.fold(registry, event);
  return registry;
};

const eventsOf = async (log: EventLog, topic: string) =>
  (await readEvents(log, topic)).flatMap((r) => ("event" in r ? [{ record: r.record, event: r.event }] : []));

describe("processor runtime on the embedded log: snapshots, bounded dedup, quiet commits", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const freshLog = async () => {
    const log = await openLog(embeddedBackend.freshConfig());
    cleanups.push(() => log.close());
    return log;
  };

  it("a restart from the latest snapshot replays only what follows it, with the same state and outputs as a full replay", async () => {
    const log = await freshLog();
    const client = createClient(log);
    await client.register(qa);
    const snapshots = memorySnapshotStore();
    const pipeline = startPipeline(log, {}, { snapshots, snapshotEvery: 5 });
    await pipeline.ready;
    // "hold" requests stay in flight: their answer step gets no result before the restart.
    const executor = startTestExecutor(log, {
      behave: (step) =>
        step.stageId === "answer" && step.inputs.question === "hold" ? { latencyMs: 60_000 } : {},
    });
    for (let i = 0; i < 6; i++) await client.execute({ programId: "qa", inputs: { question: `q${i}` } });
    for (let i = 0; i < 2; i++) await client.publish({ programId: "qa", inputs: { question: "hold" } });
    const held = async () =>
      (await eventsOf(log, Topics.steps)).filter(
        ({ event }) =>
          event.type === "StepDispatched" &&
          event.data.inputs.question === "hold" &&
          event.data.stageId === "answer",
      );
    await waitFor(async () => (await held()).length === 2);
    await executor.stop();
    await pipeline.stop();
    expect(snapshots.saved.length).toBeGreaterThan(0);

    const registry = await registryOf(log);
    const full = await rebuildState(log, pipelineProcessor(), registry);
    const resumed = await rebuildState(log, pipelineProcessor(), registry, { snapshots });
    expect(resumed.snapshot).toBeDefined();
    expect(resumed.replayed).toBeLessThan(full.replayed);
    expect(resumed.applied).toBe(full.applied);
    expect(pipelineSnapshot(resumed.state)).toEqual(pipelineSnapshot(full.state));
    expect(resumed.state.coordinator.executions.size).toBe(2);

    // A damaged snapshot (an execution without its program) is ignored: the task is rebuilt from the log.
    const latest = snapshots.saved.at(-1)!;
    const { name } = pipelineProcessor();
    const damagedParts = (latest.states[name] ?? []).map(([part, value]): [string, unknown] =>
      part === "state" ? [part, { ...(value as object), executions: [{ executionId: "x" }] }] : [part, value],
    );
    expect(damagedParts.some(([part]) => part === "state")).toBe(true);
    const damaged = memorySnapshotStore();
    await damaged.save({ ...latest, states: { ...latest.states, [name]: damagedParts } });
    const fromDamaged = await rebuildState(log, pipelineProcessor(), registry, { snapshots: damaged });
    expect(fromDamaged.snapshot).toBeUndefined();
    expect(fromDamaged.replayed).toBe(full.replayed);
    expect(pipelineSnapshot(fromDamaged.state)).toEqual(pipelineSnapshot(full.state));

    // The restarted pipeline (from the snapshot) finishes the held executions as the fully replayed state would.
    const restarted = startPipeline(log, {}, { snapshots });
    cleanups.push(() => restarted.stop());
    await restarted.ready;
    const results = [
      ...(await held()).map(({ event }) => completed(event as EventOf<"StepDispatched">, { answer: "late" })),
    ];
    await appendEvents(log, results);
    await waitFor(async () => (await eventsOf(log, Topics.results)).length === 8);
    const written = (await eventsOf(log, Topics.results)).slice(6).map(({ event }) => event);

    const processor = pipelineProcessor();
    let state = full.state;
    const expected: DspexEvent[] = [];
    for (const { record, event } of (await eventsOf(log, Topics.stepResults)).filter(({ event }) =>
      results.some((r) => r.id === event.id),
    )) {
      const out = processor.handle(state, event, {
        now: record.timestamp,
        source: record,
        key: record.key,
        consumer: processor.name,
        table: registry,
      });
      state = out.state;
      expected.push(...(out.emit as DspexEvent[]).filter((e) => e.type === "ExecutionCompleted"));
    }
    expect(written.map((e) => e.type)).toEqual(["ExecutionCompleted", "ExecutionCompleted"]);
    expect(new Set(written.map((e) => JSON.stringify(e)))).toEqual(
      new Set(expected.map((e) => JSON.stringify(e))),
    );
  });

  /** Counts the requests it takes in; requests for program "ignore" change nothing. */
  const counter: Processor<number> = {
    name: "counter",
    topics: [Topics.requests],
    initialState: 0,
    handle: (count, event) =>
      event.type === "ExecutionRequested" && event.data.programId !== "ignore"
        ? { state: count + 1, emit: [] }
        : { state: count, emit: [] },
  };

  it("redelivered inputs are dropped while the id window stays bounded", async () => {
    const log = await freshLog();
    const running = runProcessor(log, counter, { dedupCapacity: 50 });
    cleanups.push(() => running.stop());
    await running.ready;
    const events = Array.from({ length: 300 }, (_, i) => requested(`r${i}`, "qa", { question: "q" }));
    await appendEvents(log, events);
    await waitFor(async () => stateOf(running) === 300);
    // The last 20 again, as a redelivery would hand them over (same event ids).
    await appendEvents(log, events.slice(-20));
    await appendEvents(log, [requested("r-new", "qa", { question: "q" })]);
    await waitFor(async () => (stateOf(running) ?? 0) >= 301);
    await untilCaughtUp(log, { counter: [Topics.requests] });
    expect(stateOf(running)).toBe(301);
    expect(running.remembered()).toBe(50);
    const rebuilt = await rebuildState(log, counter, undefined, { dedupCapacity: 50 });
    expect(rebuilt.state).toBe(301);
    expect(rebuilt.seen.size).toBe(50);
  });

  it("inputs that change nothing are committed later, without a commit of their own", async () => {
    const log = await freshLog();
    const running = runProcessor(log, counter, { quietCommitMs: 300 });
    cleanups.push(() => running.stop());
    await running.ready;
    const committed = async () =>
      [...(await log.committed("counter", Topics.requests)).values()].reduce((a, b) => a + b, 0);
    await appendEvents(log, [requested("r1", "qa", { question: "q" })]);
    await waitFor(async () => (await committed()) === 1);
    await appendEvents(log, [
      requested("i1", "ignore", { question: "q" }),
      requested("i2", "ignore", { question: "q" }),
    ]);
    // Handled (their ids remembered), not committed yet.
    await waitFor(async () => running.remembered() === 3);
    expect(await committed()).toBe(1);
    await waitFor(async () => (await committed()) === 3, 5_000);
    expect(stateOf(running)).toBe(1);
  });

  it("a quiet batch with a record that is not an event dead-letters it once, with the batch committed at once", async () => {
    const log = await freshLog();
    const running = runProcessor(log, counter, { quietCommitMs: 200 });
    cleanups.push(() => running.stop());
    await running.ready;
    const ignored = encodeEvent(requested("i1", "ignore", { question: "q" }));
    await log.append([{ topic: Topics.requests, key: "k", value: "not json" }, ignored]);
    await waitFor(async () => [...(await log.committed("counter", Topics.requests)).values()][0] === 2);
    // Stopping commits what it holds back: the batch was committed with its dead letter already, once.
    await running.stop();
    const letters = (await eventsOf(log, Topics.dlq)).filter(({ event }) => event.type === "DeadLettered");
    expect(letters.map(({ event }) => (event.data as { reason: string }).reason)).toEqual([
      expect.stringMatching(/not valid JSON|JSON/),
    ]);
    expect(stateOf(running)).toBe(0);
  });
});
