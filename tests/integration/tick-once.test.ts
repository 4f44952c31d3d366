/**
 * A processor's ticks (timeouts, a retry's schedule, a session's expiry) append their events outside any
 * commit. A task rebuilt from what its group committed may not know of events an earlier tick appended —
 * the instance that appended them died, or its partition moved, before it read them back — and must not
 * append them again: on every backend, such an event is on the log once, and the tick still emits what it
 * has not emitted yet. (On the embedded log the rebuilt task always ticks before it reads the reminder; on
 * Kafka the consumer may hand it over first, as it did before the runtime checked.)
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Processor } from "../../processors/runtime/index.ts";
import { runProcessor } from "../../processors/runtime/index.ts";
import type { DspexEvent } from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { appendEvents, readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { backendsUnderTest, skippedHere } from "../support/backends.ts";
import { eventually, untilCaughtUp } from "../support/waits.ts";
import { requested } from "../unit/processors/fixtures.ts";

const again = "-again";

const idsOf = async (log: EventLog) =>
  (await readEvents(log, Topics.requests)).flatMap((r) => ("event" in r ? [r.event.id] : []));

/** The reminder a tick sends for request `requestId`: on the request's partition, its id derived. */
const reminderOf = (requestId: string) => {
  const event = requested(`${requestId}${again}`, "tick-once", { question: requestId });
  return { ...event, id: derivedId(requestId, "again"), key: requestId };
};

interface Reminders {
  /** Requests whose reminder has not been read back yet, and whether this task's tick sent it. */
  pending: Readonly<Record<string, boolean>>;
}

/**
 * Each request gets one reminder, sent by a tick; the task reads no further until it is sent (so a rebuilt
 * task ticks before it could read a reminder already on the log).
 */
const reminders: Processor<Reminders> = {
  name: "tick-once",
  topics: [Topics.requests],
  initialState: { pending: {} },
  handle: (state, event: DspexEvent) => {
    if (event.type !== "ExecutionRequested") return { state, emit: [] };
    const { requestId } = event.data;
    const pending = { ...state.pending };
    if (requestId.endsWith(again)) delete pending[requestId.slice(0, -again.length)];
    else pending[requestId] = false;
    return { state: { pending }, emit: [] };
  },
  tick: (state) => {
    const unsent = Object.keys(state.pending).filter((id) => !state.pending[id]);
    return {
      state: { pending: { ...state.pending, ...Object.fromEntries(unsent.map((id) => [id, true])) } },
      emit: unsent.map(reminderOf),
    };
  },
  nextTickAt: (state) => (Object.values(state.pending).some((sent) => !sent) ? 0 : undefined),
  pausedTopics: (state) => (Object.values(state.pending).some((sent) => !sent) ? [Topics.requests] : []),
};

describe.each(backendsUnderTest)("a tick's events after a rebuild: $name", (backend) => {
  if (skippedHere(backend)) return;
  const logs: EventLog[] = [];
  afterEach(async () => {
    await Promise.all(logs.splice(0).map((log) => log.close()));
  });

  it("are appended once, whatever an earlier instance appended before it died", async () => {
    const log = await openLog(backend.freshConfig());
    logs.push(log);
    await log.ensureTopics([{ topic: Topics.requests }]);
    // An earlier instance handled "first", committed it, and its tick appended the reminder; it died
    // before reading the reminder back.
    const [first] = await appendEvents(log, [requested("first", "tick-once", { question: "first" })]);
    await appendEvents(log, [reminderOf("first")]);
    await log.commit(reminders.name, [
      { topic: Topics.requests, partition: first!.partition, offset: first!.offset + 1 },
    ]);

    const running = runProcessor(log, reminders, { maxTickIntervalMs: 50 });
    try {
      await running.ready;
      await untilCaughtUp(log, { [reminders.name]: [Topics.requests] });
      // A request after the rebuild still gets its reminder from a tick.
      await appendEvents(log, [requested("second", "tick-once", { question: "second" })]);
      await eventually(
        async () => ((await idsOf(log)).includes(reminderOf("second").id) ? true : undefined),
        60_000,
        "the second request's reminder",
      );
      await untilCaughtUp(log, { [reminders.name]: [Topics.requests] });
    } finally {
      await running.stop();
    }

    const ids = await idsOf(log);
    expect(ids.filter((id) => id === reminderOf("first").id)).toHaveLength(1);
    expect(ids.filter((id) => id === reminderOf("second").id)).toHaveLength(1);
    expect(ids).toHaveLength(4);
  }, 120_000);
});
