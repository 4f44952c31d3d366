import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { BatchReader } from "../../../streams/eventstoredb/batches.ts";

const objects = () => new PassThrough({ objectMode: true, highWaterMark: 4 });

describe("pulling batches from a subscription", () => {
  it("given buffered items, when a batch is taken, then it holds at most the maximum, in order", async () => {
    const source = objects();
    for (const n of [1, 2, 3]) source.write(n);
    const reader = new BatchReader<number>(source);
    const signal = new AbortController().signal;
    expect(await reader.take(2, signal)).toEqual([1, 2]);
    expect(await reader.take(2, signal)).toEqual([3]);
  });

  it("given nothing buffered, when an item arrives later, then the waiting take resolves with it", async () => {
    const source = objects();
    const reader = new BatchReader<number>(source);
    const taking = reader.take(10, new AbortController().signal);
    setTimeout(() => source.write(7), 10);
    expect(await taking).toEqual([7]);
  });

  it("leaves what was not asked for in the source: the writer sees backpressure", async () => {
    const source = objects();
    const reader = new BatchReader<number>(source);
    const accepted = Array.from({ length: 20 }, (_, n) => source.write(n + 1));
    expect(accepted.at(-1)).toBe(false);
    expect(await reader.take(1, new AbortController().signal)).toEqual([1]);
  });

  it("ends when the source ends, after handing out what it held", async () => {
    const source = objects();
    const reader = new BatchReader<number>(source);
    source.end(1);
    const signal = new AbortController().signal;
    expect(await reader.take(5, signal)).toEqual([1]);
    expect(await reader.take(5, signal)).toBeUndefined();
  });

  it("stops waiting when aborted", async () => {
    const source = objects();
    const reader = new BatchReader<number>(source);
    const abort = new AbortController();
    const taking = reader.take(5, abort.signal);
    abort.abort();
    expect(await taking).toBeUndefined();
  });

  it("throws the source's error instead of crashing the process", async () => {
    const source = objects();
    const reader = new BatchReader<number>(source);
    const taking = reader.take(5, new AbortController().signal);
    source.destroy(new Error("subscription dropped"));
    await expect(taking).rejects.toThrow("subscription dropped");
  });
});
