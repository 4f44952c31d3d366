/**
 * Where a client's subscription starts, on every backend: a checkpoint taken now (or the positions one past
 * the records handled) resumes exactly after it, a time skips what was stored before, the default sees only
 * what comes after subscribing.
 */
import { firstValueFrom, take, toArray } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import { createClient } from "../../streams/client.ts";
import { VariableChanged } from "../../streams/events/index.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { appendEvents } from "../../streams/store.ts";
import { allTopics } from "../../streams/topics.ts";
import { backendsUnderTest, skippedHere } from "../support/backends.ts";

const change = (variableId: string, version: number) =>
  VariableChanged.create({
    stream: `variable-${variableId}`,
    key: variableId,
    data: { variableId, value: version, previous: version - 1, version, actor: "test" },
  });

const seen = (events: { data: { variableId: string; version: number } }[]) =>
  events.map((e) => `${e.data.variableId}@${e.data.version}`);

describe.each(backendsUnderTest)("client subscriptions: $name", (backend) => {
  if (skippedHere(backend)) return;
  const opened: EventLog[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((log) => log.close()));
  });
  const open = async () => {
    const log = await openLog(backend.freshConfig());
    opened.push(log);
    await log.ensureTopics(allTopics.map((topic) => ({ topic })));
    return { log, client: createClient(log) };
  };

  it("starts at a checkpoint, at a time, at the beginning or at the end", async () => {
    const { log, client } = await open();
    // Several keys, so the changes spread over partitions.
    const before = ["a", "b", "c", "d"].map((id) => change(id, 1));
    await appendEvents(log, before);
    const checkpoint = await client.checkpoint();
    const since = Date.now() + 1;
    while (Date.now() <= since) await new Promise((wake) => setTimeout(wake, 1));
    const after = ["a", "b", "c", "d"].map((id) => change(id, 2));

    const fromEnd = firstValueFrom(client.variables$().pipe(take(after.length), toArray()));
    const fromCheckpoint = firstValueFrom(
      client.variables$({ from: { positions: checkpoint } }).pipe(take(after.length), toArray()),
    );
    // Resuming from a checkpoint needs nothing to run meanwhile: subscribe after the appends, too.
    await appendEvents(log, after);
    const lateFromCheckpoint = firstValueFrom(
      client.variables$({ from: { positions: checkpoint } }).pipe(take(after.length), toArray()),
    );
    const everything = firstValueFrom(
      client.variables$({ from: "beginning" }).pipe(take(before.length + after.length), toArray()),
    );
    const fromTime = firstValueFrom(
      client.variables$({ from: { time: new Date(since) } }).pipe(take(after.length), toArray()),
    );
    const expected = seen(after).sort();
    expect(seen(await fromEnd).sort()).toEqual(expected);
    expect(seen(await fromCheckpoint).sort()).toEqual(expected);
    expect(seen(await lateFromCheckpoint).sort()).toEqual(expected);
    expect(seen(await everything).sort()).toEqual(seen([...before, ...after]).sort());
    expect(seen(await fromTime).sort()).toEqual(expected);
  });

  it("refuses a time that is not one, with what to give instead", async () => {
    const { client } = await open();
    expect(() => client.variables$({ from: { time: Number.NaN } })).toThrow(/valid date or epoch/);
  });
});
