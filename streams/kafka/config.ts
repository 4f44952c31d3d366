import { z } from "zod";

/** The local broker of infra/kafka/start.sh. */
export const defaultKafkaBrokers = "127.0.0.1:19092";

/** Where the Kafka log connects, and how it names what it creates (see docs/wire-format.md). */
export const KafkaLogConfig = z.object({
  backend: z.literal("kafka"),
  /** Bootstrap servers, as a list or "host:port,host:port"; default DSPEX_KAFKA_BROKERS, then 127.0.0.1:19092. */
  brokers: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  clientId: z.string().min(1).default("dspex"),
  /** Prefix of every topic, consumer group and transactional id: several logs can share one cluster. */
  namespace: z
    .string()
    .regex(/^[A-Za-z0-9._-]*$/, "letters, digits and . _ - only (Kafka topic characters)")
    .default(""),
  /** Partitions of a topic first seen in an append, a consume or a tail. */
  defaultPartitions: z.number().int().positive().default(3),
  /** Replication factor of the topics this log creates; -1 takes the broker's default.replication.factor. */
  replicationFactor: z.number().int().min(-1).default(-1),
  /** retention.ms of the topics this log creates: -1 keeps every event (the log is the source of truth). */
  retentionMs: z.number().int().min(-1).default(-1),
  /** A consumer that has not sent a heartbeat for this long loses its partitions (broker limits apply). */
  sessionTimeoutMs: z.number().int().positive().default(10_000),
  heartbeatIntervalMs: z.number().int().positive().default(1_000),
  /** Longest time a fetch waits on the broker for new records; also how long stop() may wait for one. */
  maxWaitMs: z.number().int().positive().default(250),
  /** A read() that makes no progress for this long fails with what it was waiting for. */
  readTimeoutMs: z.number().int().positive().default(30_000),
  /** Open transactions of a crashed process are aborted by the broker after this long at the latest. */
  transactionTimeoutMs: z.number().int().positive().default(60_000),
});
export type KafkaLogConfig = z.input<typeof KafkaLogConfig>;
export type KafkaLogSettings = z.output<typeof KafkaLogConfig>;

/** "a:1, b:2" or ["a:1"] → ["a:1", "b:2"]; falls back to DSPEX_KAFKA_BROKERS, then the local broker. */
export const brokerList = (
  brokers: string | readonly string[] | undefined,
  environment: string | undefined = process.env.DSPEX_KAFKA_BROKERS,
): string[] => {
  const given = brokers ?? environment ?? defaultKafkaBrokers;
  const list = (typeof given === "string" ? given.split(",") : [...given])
    .map((broker) => broker.trim())
    .filter((broker) => broker.length > 0);
  if (list.length === 0) throw new Error("no Kafka brokers given (set DSPEX_KAFKA_BROKERS=host:port)");
  return list;
};
