import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openEmbeddedLog } from "../streams/embedded/log.ts";
import type { AppendRecord } from "../streams/log.ts";
import { median, report, type Suite, seconds } from "./report.ts";

const EVENTS = 200_000;
const SINGLE = 20_000;
const BATCH = 1_000;
const ROUNDS = 3;
const topic = "bench.log";

/** A realistic ~400-byte event value. */
const eventValue = (i: number) =>
  JSON.stringify({
    id: `00000000-0000-4000-8000-${i.toString().padStart(12, "0")}`,
    type: "StepCompleted",
    schemaVersion: 1,
    stream: `execution-${i % 1000}`,
    key: `execution-${i % 1000}`,
    occurredAt: "2026-01-01T00:00:00.000Z",
    correlationId: `r-${i}`,
    causationId: null,
    data: { stepId: `s-${i}`, outputs: { answer: "Paris is the capital of France." }, latencyMs: 41.5 },
  });

const records = (from: number, count: number): AppendRecord[] =>
  Array.from({ length: count }, (_, j) => ({
    topic,
    key: `execution-${(from + j) % 1000}`,
    value: eventValue(from + j),
  }));

const oneRound = async () => {
  const folder = mkdtempSync(join(tmpdir(), "dspex-bench-"));
  const log = openEmbeddedLog({ path: join(folder, "log.db") });
  await log.ensureTopics([{ topic, partitions: 4 }]);
  const prepared = Array.from({ length: EVENTS / BATCH }, (_, b) => records(b * BATCH, BATCH));

  let start = process.hrtime.bigint();
  for (const batch of prepared) await log.append(batch);
  const batched = EVENTS / seconds(start);

  const singles = records(EVENTS, SINGLE);
  start = process.hrtime.bigint();
  for (const record of singles) await log.append([record]);
  const single = SINGLE / seconds(start);

  const total = EVENTS + SINGLE;
  start = process.hrtime.bigint();
  await new Promise<void>((done) => {
    let seen = 0;
    const consumer = log.consume({ group: "bench", topics: [topic], maxBatch: 2000 }, (batch) => {
      seen += batch.records.length;
      if (seen >= total) {
        done();
        void consumer.stop();
      }
    });
  });
  const consumed = total / seconds(start);
  await log.close();
  rmSync(folder, { recursive: true, force: true });
  return { batched, single, consumed };
};

export const logSuite: Suite = {
  name: "log",
  description: "embedded log: append (batched, single) and consume throughput",
  async run() {
    const rounds = [];
    for (let i = 0; i < ROUNDS; i++) rounds.push(await oneRound());
    report("log", "embedded.append.batched", median(rounds.map((r) => r.batched)), "events/s");
    report("log", "embedded.append.single", median(rounds.map((r) => r.single)), "events/s");
    report("log", "embedded.consume", median(rounds.map((r) => r.consumed)), "events/s");
  },
};
