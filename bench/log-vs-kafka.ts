/**
 * `npm run bench -- log-vs-kafka`: the embedded log and Kafka side by side, by the same code through the
 * `EventLog` port, rounds interleaved (embedded, Kafka, embedded, Kafka, ...): append batched (1,000 a
 * call) and single, consume (a consumer group, committing each batch), and the round trip from append()
 * to a consumer's handler. Figures: each side's median, and the ratio Kafka/embedded (median of the
 * per-round ratios; for the round trip, of the p50s). Kafka: DSPEX_KAFKA_BROKERS, else the local broker
 * of infra/kafka (as the kafka suite finds it); without one, only the embedded side runs.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openEmbeddedLog } from "../streams/embedded/log.ts";
import { openKafkaLog } from "../streams/kafka/log.ts";
import type { EventLog } from "../streams/log.ts";
import { deleteTopicsWithPrefix } from "../tests/support/kafka-admin.ts";
import { consumeAll, findBroker, records, roundTrips } from "./kafka.ts";
import { median, percentile, report, type Suite, seconds, spread } from "./report.ts";

const BATCHED = Number(process.env.DSPEX_BENCH_LOGS_EVENTS ?? 100_000);
const BATCH = 1_000;
const SINGLE = 2_000;
const ROUND_TRIPS = 300;
const ROUNDS = 3;
const PARTITIONS = 4;

interface Round {
  appendBatched: number;
  appendSingle: number;
  consume: number;
  roundTripP50: number;
  roundTripP99: number;
}

/** One round on a log: fresh topics, the same records and the same steps on either backend. */
const measureRound = async (log: EventLog, round: number): Promise<Round> => {
  const [events, latency] = [`compare.events.${round}`, `compare.latency.${round}`];
  await log.ensureTopics([events, latency].map((topic) => ({ topic, partitions: PARTITIONS })));
  const prepared = Array.from({ length: BATCHED / BATCH }, (_, b) => records(events, b * BATCH, BATCH));
  let start = process.hrtime.bigint();
  for (const batch of prepared) await log.append(batch);
  const appendBatched = BATCHED / seconds(start);

  const singles = records(events, BATCHED, SINGLE);
  start = process.hrtime.bigint();
  for (const record of singles) await log.append([record]);
  const appendSingle = SINGLE / seconds(start);

  const total = BATCHED + SINGLE;
  const consume = total / (await consumeAll(log, `compare-consume-${round}`, events, total));
  const samples = await roundTrips(log, latency, ROUND_TRIPS);
  return {
    appendBatched,
    appendSingle,
    consume,
    roundTripP50: percentile(samples, 50),
    roundTripP99: percentile(samples, 99),
  };
};

const metrics: [keyof Round, string, string][] = [
  ["appendBatched", "append.batched", "events/s"],
  ["appendSingle", "append.single", "events/s"],
  ["consume", "consume", "events/s"],
  ["roundTripP50", "roundtrip.p50", "ms"],
  ["roundTripP99", "roundtrip.p99", "ms"],
];

export const logVsKafkaSuite: Suite = {
  name: "log-vs-kafka",
  description: `embedded log vs Kafka through the same EventLog code, ${ROUNDS} interleaved rounds: append, consume, round trip, ratios`,
  async run() {
    const folder = mkdtempSync(join(tmpdir(), "dspex-bench-compare-"));
    const embedded = openEmbeddedLog({ path: join(folder, "log.db") });
    let broker: Awaited<ReturnType<typeof findBroker>> | undefined;
    try {
      broker = await findBroker();
    } catch (error) {
      console.log(
        `# log-vs-kafka: Kafka side skipped, no broker (${(error as Error).message.split("\n")[0]})`,
      );
    }
    const namespace = `bench-compare-${Date.now().toString(36)}.`;
    const kafka = broker
      ? await openKafkaLog({ backend: "kafka", brokers: broker.brokers, namespace })
      : undefined;
    const rounds: { embedded: Round; kafka?: Round }[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const e = await measureRound(embedded, round);
        const k = kafka ? await measureRound(kafka, round) : undefined;
        rounds.push({ embedded: e, kafka: k });
        console.log(
          `# log-vs-kafka round ${round + 1}: ${metrics
            .map(([key, name]) => `${name} ${e[key].toPrecision(3)}${k ? ` | ${k[key].toPrecision(3)}` : ""}`)
            .join(", ")}`,
        );
      }
      for (const [key, name, unit] of metrics) {
        const e = rounds.map((r) => r.embedded[key]);
        report("log-vs-kafka", `embedded.${name}`, median(e), unit);
        if (!kafka) continue;
        const k = rounds.map((r) => r.kafka![key]);
        const ratios = rounds.map((r) => r.kafka![key] / r.embedded[key]);
        report("log-vs-kafka", `kafka.${name}`, median(k), unit);
        report("log-vs-kafka", `ratio kafka/embedded.${name}`, median(ratios), "x");
        report("log-vs-kafka", `ratio_spread.${name}`, spread(ratios) * 100, "%");
      }
    } finally {
      await embedded.close();
      rmSync(folder, { recursive: true, force: true });
      if (kafka && broker) {
        await kafka.close();
        await deleteTopicsWithPrefix(broker.brokers, namespace).catch(() => undefined);
        await broker.release();
      }
    }
  },
};

if (import.meta.url === `file://${process.argv[1]}`) await logVsKafkaSuite.run();
