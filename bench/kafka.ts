/**
 * `npm run bench -- kafka`: the Kafka backend against a real broker — DSPEX_KAFKA_BROKERS, else the local
 * broker of infra/kafka (started here, and stopped again if this suite started it).
 * Figures: append throughput (batched, single), consume throughput (consumer group, committing each batch),
 * consume-transform-produce throughput (commitWith: one transaction per batch), and the latency from
 * append() to the record reaching a consumer's handler (p50, p99).
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type KafkaLog, openKafkaLog } from "../streams/kafka/log.ts";
import type { AppendRecord, EventLog, LogRecord } from "../streams/log.ts";
import { deleteTopicsWithPrefix } from "../tests/support/kafka-admin.ts";
import { median, percentile, report, type Suite, seconds } from "./report.ts";

const EVENTS = 200_000;
const BATCH = 1_000;
const SINGLE = 5_000;
const TRANSFORMED = 50_000;
const ROUND_TRIPS = 2_000;
const PARTITIONS = 4;

const run = promisify(execFile);
const infra = fileURLToPath(new URL("../infra/kafka/", import.meta.url));

/** The same ~400-byte event value as the embedded log's bench. */
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

export const records = (topic: string, from: number, count: number): AppendRecord[] =>
  Array.from({ length: count }, (_, j) => ({
    topic,
    key: `execution-${(from + j) % 1000}`,
    value: eventValue(from + j),
  }));

/** The brokers to measure, and how to put things back afterwards. */
export const findBroker = async (): Promise<{ brokers: string; release: () => Promise<void> }> => {
  const given = process.env.DSPEX_KAFKA_BROKERS;
  if (given) return { brokers: given, release: async () => undefined };
  const running = await run("bash", [`${infra}status.sh`]).then(
    () => true,
    () => false,
  );
  const { stdout } = await run("bash", [`${infra}start.sh`]);
  return {
    brokers: stdout.trim().split("\n").at(-1)!,
    release: running ? async () => undefined : async () => void (await run("bash", [`${infra}stop.sh`])),
  };
};

/** Consumes `group` until `count` records arrived; resolves with the seconds it took. */
export const consumeAll = (log: EventLog, group: string, topic: string, count: number) =>
  new Promise<number>((resolve, reject) => {
    const start = process.hrtime.bigint();
    let seen = 0;
    const consumer = log.consume({ group, topics: [topic], maxBatch: 5_000 }, (batch) => {
      seen += batch.records.length;
      if (seen >= count) {
        resolve(seconds(start));
        void consumer.stop();
      }
    });
    consumer.done.catch(reject);
  });

/** Reads `count` inputs and writes one output each, committing every batch in a transaction. */
const transformAll = (log: KafkaLog, input: string, output: string, count: number) =>
  new Promise<number>((resolve, reject) => {
    const start = process.hrtime.bigint();
    let seen = 0;
    const consumer = log.consume(
      { group: "bench-transform", topics: [input], maxBatch: 5_000, autoCommit: false },
      async (batch) => {
        await batch.commitWith(batch.records.map((r) => ({ topic: output, key: r.key, value: r.value })));
        seen += batch.records.length;
        if (seen >= count) {
          resolve(seconds(start));
          void consumer.stop();
        }
      },
    );
    consumer.done.catch(reject);
  });

/** append() of one record → the consumer's handler sees it; one record in flight at a time. */
export const roundTrips = async (log: EventLog, topic: string, count: number): Promise<number[]> => {
  const waiting = new Map<string, (record: LogRecord) => void>();
  const consumer = log.consume({ group: "bench-latency", topics: [topic], from: "end" }, (batch) => {
    for (const record of batch.records) waiting.get(record.value.toString())?.(record);
  });
  const once = async (id: string): Promise<number> => {
    const arrived = new Promise<void>((resolve) => waiting.set(id, () => resolve()));
    const start = process.hrtime.bigint();
    await log.append([{ topic, key: `k${id}`, value: id }]);
    await arrived;
    waiting.delete(id);
    return seconds(start) * 1000;
  };
  // Warm up until the consumer has joined its group and fetches from the end.
  for (let i = 0; ; i++) {
    const warm = once(`warm-${i}`);
    const joined = await Promise.race([
      warm.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 2_000)),
    ]);
    if (joined) break;
  }
  const samples: number[] = [];
  for (let i = 0; i < count; i++) samples.push(await once(`rt-${i}`));
  await consumer.stop();
  return samples.sort((a, b) => a - b);
};

export const kafkaSuite: Suite = {
  name: "kafka",
  description: "Kafka backend (kafkajs, local broker): append, consume, transactions, round trip",
  async run() {
    let broker: Awaited<ReturnType<typeof findBroker>>;
    try {
      broker = await findBroker();
    } catch (error) {
      console.log(`kafka suite skipped: no broker (${(error as Error).message.split("\n")[0]})`);
      return;
    }
    const namespace = `bench-${Date.now().toString(36)}.`;
    const log = await openKafkaLog({ backend: "kafka", brokers: broker.brokers, namespace });
    try {
      const [events, transformed, latency] = ["events", "transformed", "latency"];
      await log.ensureTopics(
        [events, transformed, latency].map((topic) => ({ topic, partitions: PARTITIONS })),
      );
      const prepared = Array.from({ length: EVENTS / BATCH }, (_, b) => records(events, b * BATCH, BATCH));

      let start = process.hrtime.bigint();
      for (const batch of prepared) await log.append(batch);
      report("kafka", "append.batched", EVENTS / seconds(start), "events/s");

      const singles = records(events, EVENTS, SINGLE);
      start = process.hrtime.bigint();
      for (const record of singles) await log.append([record]);
      report("kafka", "append.single", SINGLE / seconds(start), "events/s");

      const consumed = [];
      for (const round of [1, 2, 3])
        consumed.push(
          (EVENTS + SINGLE) / (await consumeAll(log, `bench-consume-${round}`, events, EVENTS + SINGLE)),
        );
      report("kafka", "consume", median(consumed), "events/s");

      report(
        "kafka",
        "transform.commitWith",
        TRANSFORMED / (await transformAll(log, events, transformed, TRANSFORMED)),
        "events/s",
      );

      const samples = await roundTrips(log, latency, ROUND_TRIPS);
      report("kafka", "roundtrip.p50", percentile(samples, 50), "ms");
      report("kafka", "roundtrip.p99", percentile(samples, 99), "ms");
    } finally {
      await log.close();
      await deleteTopicsWithPrefix(broker.brokers, namespace).catch(() => undefined);
      await broker.release();
    }
  },
};
