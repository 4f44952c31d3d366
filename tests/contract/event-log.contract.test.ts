import { firstValueFrom, take, toArray } from "rxjs";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { EventValidationError, ExecutionRequested } from "../../streams/events/index.ts";
import { type EventLog, headerOf, type LogRecord, textOf } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { appendEvents, consumeEvents, readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { backendsUnderTest, skippedHere } from "../support/backends.ts";
import { killHard, spawnTs } from "../support/processes.ts";

const childScript = new URL("./child.ts", import.meta.url).pathname;
let counter = 0;
const unique = (name: string) => `t${Date.now().toString(36)}${(counter++).toString(36)}.${name}`;

const body = (r: LogRecord) => JSON.parse(r.value.toString("utf8"));

/** Consumes in `group` until `count` records arrived; commits as it goes unless told otherwise. */
const consumeN = async (log: EventLog, group: string, topics: string[], count: number, autoCommit = true) => {
  const received: LogRecord[] = [];
  let consumer: ReturnType<EventLog["consume"]> | undefined;
  await new Promise<void>((done, fail) => {
    consumer = log.consume({ group, topics, autoCommit, maxBatch: 100 }, (batch) => {
      received.push(...batch.records);
      if (received.length >= count) done();
    });
    consumer.done.catch(fail);
  });
  await consumer!.stop();
  return received;
};

const request = (n: number, key = `session-${n % 3}`) =>
  ExecutionRequested.create({
    stream: `request-${n}`,
    key,
    data: { requestId: `r-${n}`, programId: "qa", inputs: { question: `q${n}` } },
  });

describe.each(backendsUnderTest)("EventLog contract: $name", (backend) => {
  if (skippedHere(backend)) return;
  const opened: EventLog[] = [];
  const open = async (config = backend.freshConfig()) => {
    const log = await openLog(config);
    opened.push(log);
    return log;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((log) => log.close()));
  });
  beforeAll(() => undefined);

  it("keeps order per key across single and batched appends", async () => {
    const log = await open();
    const topic = unique("order");
    await log.ensureTopics([{ topic, partitions: 3 }]);
    const keys = ["a", "b", "c", "d", "e"];
    const next = new Map(keys.map((k) => [k, 0]));
    const make = (k: string) => {
      const n = next.get(k)!;
      next.set(k, n + 1);
      return { topic, key: k, value: JSON.stringify({ k, n }) };
    };
    for (let round = 0; round < 20; round++) {
      await log.append(keys.map(make));
      await log.append([make(keys[round % keys.length]!)]);
    }
    const records = await consumeN(log, unique("g"), [topic], 120);
    expect(records).toHaveLength(120);
    for (const k of keys) {
      const sequence = records.filter((r) => r.key === k).map((r) => body(r).n);
      expect(sequence).toEqual([...sequence].sort((a, b) => a - b));
      expect(new Set(records.filter((r) => r.key === k).map((r) => r.partition)).size).toBe(1);
    }
  });

  it("returns consecutive offsets per partition and reads a range", async () => {
    const log = await open();
    const topic = unique("range");
    await log.ensureTopics([{ topic, partitions: 1 }]);
    const positions = await log.append(
      Array.from({ length: 10 }, (_, i) => ({ topic, key: "k", value: `${i}` })),
    );
    expect(positions.map((p) => p.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const range = await log.read(topic, { partition: 0, fromOffset: 3, limit: 4 });
    expect(range.map((r) => r.value.toString())).toEqual(["3", "4", "5", "6"]);
  });

  it("says how many partitions a topic has (0 for none) without creating it", async () => {
    const log = await open();
    const topic = unique("parts");
    expect(await log.partitions(topic)).toBe(0);
    expect(await log.partitions(topic)).toBe(0);
    await log.ensureTopics([{ topic, partitions: 3 }]);
    expect(await log.partitions(topic)).toBe(3);
    await log.ensureTopics([{ topic, partitions: 4 }]);
    expect(await log.partitions(topic)).toBe(4);
  });

  it("reads back text and binary values byte for byte, headers included", async () => {
    const log = await open();
    const topic = unique("bytes");
    await log.ensureTopics([{ topic, partitions: 1 }]);
    const binary = Uint8Array.from([0xff, 0x00, 0xc3, 0x28]);
    const headers = { "dspex-type": "Thing", other: 'q"uote' };
    await log.append([
      { topic, key: "k", value: "héllo ✓", headers },
      { topic, key: "k", value: binary, headers: { other: "x", "dspex-type": "Second" } },
    ]);
    const [text, bytes] = await log.read(topic, { partition: 0 });
    expect(text!.value).toEqual(Buffer.from("héllo ✓", "utf8"));
    expect(textOf(text!)).toBe("héllo ✓");
    expect(text!.headers).toEqual(headers);
    expect(headerOf(text!, "dspex-type")).toBe("Thing");
    expect(headerOf(text!, "other")).toBe('q"uote');
    expect(bytes!.value).toEqual(Buffer.from(binary));
    expect(headerOf(bytes!, "dspex-type")).toBe("Second");
    expect(headerOf(bytes!, "missing")).toBeUndefined();
  });

  it("reads a large page exactly as the same records read in small pages", async () => {
    const log = await open();
    const topic = unique("pages");
    await log.ensureTopics([{ topic, partitions: 1 }]);
    const records = Array.from({ length: 1500 }, (_, i) => ({
      topic,
      key: `k${i % 7}`,
      value: i % 5 === 0 ? Uint8Array.from([i % 256, 0xff, 0]) : `{"n":${i},"s":"é${i}"}`,
      ...(i % 3 === 0 ? {} : { headers: { "dspex-type": `T${i % 4}` } }),
    }));
    for (let i = 0; i < records.length; i += 500) await log.append(records.slice(i, i + 500));
    const view = (r: LogRecord) => [r.offset, r.key, r.value.toString("hex"), r.headers];
    const large = await log.read(topic, { partition: 0, fromOffset: 100, limit: 1300 });
    const small: LogRecord[] = [];
    for (let from = 100; from < 1400; from += 100)
      small.push(...(await log.read(topic, { partition: 0, fromOffset: from, limit: 100 })));
    expect(large).toHaveLength(1300);
    expect(large.map(view)).toEqual(small.map(view));
    expect(large[0]!.value).toEqual(Buffer.from([100, 0xff, 0]));
    expect(textOf(large[1]!)).toBe('{"n":101,"s":"é101"}');
    expect(headerOf(large[1]!, "dspex-type")).toBe("T1");
    expect(large[2]!.headers).toEqual({});
  });

  it("redelivers what a killed consumer had not committed", async () => {
    const config = backend.freshConfig();
    const log = await open(config);
    const topic = unique("redeliver");
    const group = unique("group");
    await log.ensureTopics([{ topic, partitions: 1 }]);
    await log.append(
      Array.from({ length: 10 }, (_, i) => ({ topic, key: "k", value: JSON.stringify({ n: i }) })),
    );
    const child = spawnTs(childScript, ["consume", JSON.stringify(config), JSON.stringify({ topic, group })]);
    await child.waitFor((lines) => lines.filter((l) => l.startsWith("got")).length >= 10, 60_000);
    await killHard(child.child);
    expect(await log.committed(group, topic)).toEqual(new Map());
    const again = await consumeN(log, group, [topic], 10);
    expect(again.map((r) => body(r).n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("keeps committed offsets across a restart", async () => {
    const config = backend.freshConfig();
    const topic = unique("restart");
    const group = unique("group");
    const first = await open(config);
    await first.ensureTopics([{ topic, partitions: 1 }]);
    await first.append(
      Array.from({ length: 8 }, (_, i) => ({ topic, key: "k", value: JSON.stringify({ n: i }) })),
    );
    const firstRead = await consumeN(first, group, [topic], 8);
    expect(firstRead).toHaveLength(8);
    await first.close();
    const second = await open(config);
    expect(await second.committed(group, topic)).toEqual(new Map([[0, 8]]));
    await second.append([{ topic, key: "k", value: JSON.stringify({ n: 8 }) }]);
    const after = await consumeN(second, group, [topic], 1);
    expect(after.map((r) => body(r).n)).toEqual([8]);
  });

  it("takes commits from concurrent callers, applied in call order", async () => {
    const log = await open();
    const topic = unique("commits");
    const group = unique("group");
    await log.ensureTopics([{ topic, partitions: 1 }]);
    await log.append(Array.from({ length: 6 }, (_, i) => ({ topic, key: "k", value: `${i}` })));
    await Promise.all([1, 2, 3, 4, 5].map((offset) => log.commit(group, [{ topic, partition: 0, offset }])));
    expect(await log.committed(group, topic)).toEqual(new Map([[0, 5]]));
  });

  it("keeps two consumer groups independent", async () => {
    const log = await open();
    const topic = unique("groups");
    await log.ensureTopics([{ topic, partitions: 2 }]);
    await log.append(
      Array.from({ length: 20 }, (_, i) => ({ topic, key: `k${i}`, value: JSON.stringify({ n: i }) })),
    );
    const a = await consumeN(log, unique("a"), [topic], 20);
    const b = await consumeN(log, unique("b"), [topic], 20);
    const ns = (rs: LogRecord[]) => rs.map((r) => body(r).n).sort((x, y) => x - y);
    expect(ns(a)).toEqual(ns(b));
    expect(ns(a)).toHaveLength(20);
  });

  it("replays from the beginning exactly what was consumed live", async () => {
    const log = await open();
    const topic = unique("replay");
    await log.ensureTopics([{ topic, partitions: 2 }]);
    const live = consumeN(log, unique("live"), [topic], 200);
    for (let i = 0; i < 200; i += 25) {
      await log.append(
        Array.from({ length: 25 }, (_, j) => ({ topic, key: `k${(i + j) % 7}`, value: `${i + j}` })),
      );
    }
    const liveRecords = await live;
    const replayed = await consumeN(log, unique("replay"), [topic], 200);
    const view = (rs: LogRecord[]) =>
      rs
        .map((r) => `${r.partition}:${r.offset}:${r.key}:${r.value.toString()}`)
        .sort((x, y) => x.localeCompare(y, "en", { numeric: true }));
    expect(view(replayed)).toEqual(view(liveRecords));
  });

  it("tails live appends as an Observable", async () => {
    const log = await open();
    const topic = unique("tail");
    await log.ensureTopics([{ topic, partitions: 1 }]);
    await log.append([{ topic, key: "k", value: "old" }]);
    const tailed = firstValueFrom(log.tail([topic], { from: "end" }).pipe(take(3), toArray()));
    await new Promise((r) => setTimeout(r, 200));
    await log.append(["a", "b", "c"].map((value) => ({ topic, key: "k", value })));
    expect((await tailed).map((r) => r.value.toString())).toEqual(["a", "b", "c"]);
  });

  it("wakes a consumer and a tail waiting here with what another process appends", async () => {
    const config = backend.freshConfig();
    const log = await open(config);
    const topic = unique("foreign");
    await log.ensureTopics([{ topic, partitions: 2 }]);
    const tailed = firstValueFrom(log.tail([topic]).pipe(take(20), toArray()));
    const consumed: LogRecord[] = [];
    let gotAll!: () => void;
    const allConsumed = new Promise<void>((resolve) => {
      gotAll = resolve;
    });
    const consumer = log.consume({ group: unique("g"), topics: [topic] }, (batch) => {
      consumed.push(...batch.records);
      if (consumed.length >= 20) gotAll();
    });
    await consumer.joined;
    const writer = spawnTs(childScript, [
      "append",
      JSON.stringify(config),
      JSON.stringify({ topic, prefix: "other", count: 20, batch: 5 }),
    ]);
    expect(await writer.exited).toBe(0);
    await allConsumed;
    await consumer.stop();
    const written = (records: LogRecord[]) => records.map((r) => body(r).n).sort((a, b) => a - b);
    const all = Array.from({ length: 20 }, (_, n) => n);
    expect(written(consumed)).toEqual(all);
    expect(written(await tailed)).toEqual(all);
  });

  it("loses nothing when two processes append at once", async () => {
    const config = backend.freshConfig();
    const log = await open(config);
    const topic = unique("concurrent");
    await log.ensureTopics([{ topic, partitions: 2 }]);
    const writers = ["w1", "w2"].map((prefix) =>
      spawnTs(childScript, [
        "append",
        JSON.stringify(config),
        JSON.stringify({ topic, prefix, count: 1500, batch: 50 }),
      ]),
    );
    const codes = await Promise.all(writers.map((w) => w.exited));
    expect(codes).toEqual([0, 0]);
    const records = await consumeN(log, unique("g"), [topic], 3000);
    const bodies = records.map(body);
    expect(new Set(bodies.map((b) => `${b.writer}:${b.n}`)).size).toBe(3000);
    for (const writer of ["w1", "w2"]) {
      for (let k = 0; k < 5; k++) {
        const seq = records.filter((r) => r.key === `${writer}-${k}`).map((r) => body(r).n);
        expect(seq).toEqual([...seq].sort((a, b) => a - b));
      }
    }
  });

  it("commits outputs and input offsets together", async () => {
    const log = await open();
    const input = unique("in");
    const output = unique("out");
    const group = unique("g");
    await log.ensureTopics([
      { topic: input, partitions: 1 },
      { topic: output, partitions: 1 },
    ]);
    await log.append([1, 2, 3].map((n) => ({ topic: input, key: "k", value: `${n}` })));
    await new Promise<void>((done) => {
      const consumer = log.consume({ group, topics: [input] }, async (batch) => {
        await batch.commitWith(
          batch.records.map((r) => ({ topic: output, key: r.key, value: `${Number(r.value) * 10}` })),
        );
        if (batch.records.at(-1)!.offset === 2) {
          done();
          void consumer.stop();
        }
      });
    });
    // Kafka's coordinator writes a transaction's markers after it answers the commit: readers see the
    // outputs and the offsets a moment later, and both at once.
    const outputs = async () => (await log.read(output)).map((r) => r.value.toString());
    await expect.poll(outputs, { timeout: 10_000 }).toEqual(["10", "20", "30"]);
    await expect.poll(() => log.committed(group, input), { timeout: 10_000 }).toEqual(new Map([[0, 3]]));
  });

  it("refuses an invalid event with a clear error and writes none of its batch", async () => {
    const log = await open();
    const bad = { ...request(1), data: { requestId: "r-1", programId: "qa", inputs: "not an object" } };
    await expect(appendEvents(log, [request(0), bad])).rejects.toThrow(EventValidationError);
    await expect(appendEvents(log, [bad])).rejects.toThrow(/invalid ExecutionRequested event: data.inputs/);
    expect(await log.read(Topics.requests)).toEqual([]);
  });

  it("dead-letters undecodable records with the original bytes and keeps consuming", async () => {
    const log = await open();
    const group = unique("g");
    await log.ensureTopics([{ topic: Topics.requests }, { topic: Topics.dlq }]);
    const garbage = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
    await appendEvents(log, [request(1, "s")]);
    await log.append([
      { topic: Topics.requests, key: "s", value: garbage },
      { topic: Topics.requests, key: "s", value: '{"type":"Nope"}' },
    ]);
    await appendEvents(log, [request(2, "s")]);
    const seen: string[] = [];
    let consumer: ReturnType<typeof consumeEvents> | undefined;
    await new Promise<void>((done) => {
      consumer = consumeEvents(log, { group, topics: [Topics.requests] }, (batch) => {
        for (const { event } of batch.events)
          if (event.type === "ExecutionRequested") seen.push(event.data.requestId);
        if (seen.length === 2) done();
      });
    });
    // Stopped: every batch it took is committed, its dead letters with it.
    await consumer!.stop();
    expect(seen).toEqual(["r-1", "r-2"]);
    const lettersOf = async () =>
      (await readEvents(log, Topics.dlq)).map((d) =>
        "event" in d && d.event.type === "DeadLettered" ? d.event.data : undefined,
      );
    // Committed in the batches' transactions: visible a moment after (Kafka writes the markers then).
    await expect.poll(async () => (await lettersOf()).length, { timeout: 10_000 }).toBe(2);
    const letters = await lettersOf();
    expect(letters[0]).toMatchObject({ encoding: "base64", reason: "value is not valid UTF-8" });
    expect(Buffer.from(letters[0]!.original, "base64")).toEqual(garbage);
    expect(letters[1]).toMatchObject({ encoding: "utf8", original: '{"type":"Nope"}' });
    expect(letters[1]!.reason).toMatch(/not a dspex envelope/);
  });
});
