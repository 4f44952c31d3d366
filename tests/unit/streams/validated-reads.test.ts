/**
 * What this process validated is not validated again: an event `create` made is encoded as it is, and the
 * embedded log hands back the events this process encoded and appended with their ids (`validatedId`), so
 * decoding them is a JSON parse; anything else is validated as ever.
 */
import { afterEach, describe, expect, it } from "vitest";
import { decodeRecord, encodeEvent, parseEvent } from "../../../streams/codec.ts";
import type { EventLog } from "../../../streams/log.ts";
import { openLog } from "../../../streams/open.ts";
import { appendEvents, consumeEvents } from "../../../streams/store.ts";
import { Topics } from "../../../streams/topics.ts";
import { embeddedBackend } from "../../support/backends.ts";
import { requested } from "../processors/fixtures.ts";

describe("reads of events this process validated (embedded log)", () => {
  const logs: EventLog[] = [];
  afterEach(async () => {
    await Promise.all(logs.splice(0).map((log) => log.close()));
  });
  const open = async (config = embeddedBackend.freshConfig()) => {
    const log = await openLog(config);
    logs.push(log);
    return { log, config };
  };

  it("decode to exactly what validation gives, appended or committed with a batch", async () => {
    const { log } = await open();
    const event = requested("r-1", "qa", { question: "what?" }, { sessionId: "s-1" });
    await appendEvents(log, [event]);
    const [record] = await log.read(Topics.requests);
    expect(record!.validatedId).toBe(event.id);
    const trusted = decodeRecord(record!);
    expect(trusted).toEqual(parseEvent(JSON.parse(record!.value.toString("utf8"))));
    expect(trusted.ok && trusted.event).toEqual(event);

    // Outputs a consumer commits with its batch are remembered too.
    const output = requested("r-2", "qa", { question: "and?" });
    let committed!: () => void;
    const handled = new Promise<void>((done) => {
      committed = done;
    });
    const consumer = consumeEvents(log, { group: "g", topics: [Topics.requests] }, async (batch) => {
      await batch.commitWith([output]);
      committed();
    });
    await handled;
    await consumer.stop();
    const records = await log.read(Topics.requests);
    expect(records.find((r) => r.key === output.key)?.validatedId).toBe(output.id);
  });

  it("are validated as ever when written otherwise: raw appends, another process, a record changed since", async () => {
    const { log, config } = await open();
    const event = requested("r-3", "qa", { question: "q" });
    const { topic, key, value, headers } = encodeEvent(event);
    // The same bytes, appended as a plain record: not known as validated.
    await log.append([{ topic, key, value, headers }]);
    await appendEvents(log, [event]);
    const [raw, encoded] = await log.read(Topics.requests);
    expect(raw!.validatedId).toBeUndefined();
    expect(encoded!.validatedId).toBe(event.id);
    // Another process on the same file validated nothing of it.
    const { log: other } = await open(config);
    expect((await other.read(Topics.requests)).map((r) => r.validatedId)).toEqual([undefined, undefined]);
    // A value that does not hold the remembered id is validated (and refused when invalid).
    const forged = {
      ...encoded!,
      text: JSON.stringify({ ...event, id: "not-a-uuid" }),
      validatedId: event.id,
    };
    const decoded = decodeRecord(forged);
    expect(decoded.ok).toBe(false);
    expect(!decoded.ok && decoded.reason).toMatch(/id: Invalid UUID/);
  });

  it("encode an event create made as it is, and validate any other object, a copy included", () => {
    const event = requested("r-4", "qa", { question: "q" });
    const copy = JSON.parse(JSON.stringify(event));
    expect(encodeEvent(event).value).toBe(encodeEvent(copy).value);
    expect(() => encodeEvent({ ...event, id: "not-a-uuid" })).toThrow(/ExecutionRequested.*id/);
  });
});
