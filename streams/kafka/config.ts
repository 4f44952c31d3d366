import { z } from "zod";

/** The local broker of infra/kafka/start.sh. */
export const defaultKafkaBrokers = "127.0.0.1:19092";

/** Where the Kafka log connects, and how it names what it creates (see docs/wire-format.md). */
export const KafkaLogConfig = z.object({
  backend: z.literal("kafka"),
  /** Bootstrap servers, as a list or "host:port,host:port"; default DSPEX_KAFKA_BROKERS, then 127.0.0.1:19092. */
  brokers: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  clientId: z.string().min(1).default("dspex"),
  /** TLS to the brokers (the system's CA store). */
  ssl: z.boolean().default(false),
  /** SASL authentication; the password is read from the environment variable `passwordEnv`, never from config. */
  sasl: z
    .object({
      mechanism: z.enum(["plain", "scram-sha-256", "scram-sha-512"]),
      username: z.string().min(1),
      passwordEnv: z.string().min(1),
    })
    // A password written here is refused, not dropped: secrets never live in configuration.
    .strict()
    .optional(),
  /** Prefix of every topic, consumer group and transactional id: several logs can share one cluster. */
  namespace: z
    .string()
    .regex(/^[A-Za-z0-9._-]*$/, "letters, digits and . _ - only (Kafka topic characters)")
    .default(""),
  /** Partitions of a topic first seen in an append, a consume or a tail. */
  defaultPartitions: z.number().int().positive().default(3),
  /** Replication factor of the topics this log creates; -1 takes the broker's default.replication.factor. */
  replicationFactor: z
    .number()
    .int()
    .refine((n) => n === -1 || n >= 1, "-1 (the broker's default) or at least 1")
    .default(-1),
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

export type SaslSettings = NonNullable<KafkaLogSettings["sasl"]>;

/** kafkajs's SASL options, with the password taken from the environment; a missing one is a clear error. */
export const saslOptions = (
  sasl: SaslSettings | undefined,
  environment: NodeJS.ProcessEnv = process.env,
): { mechanism: SaslSettings["mechanism"]; username: string; password: string } | undefined => {
  if (!sasl) return undefined;
  const password = environment[sasl.passwordEnv];
  if (!password)
    throw new Error(
      `Kafka SASL: the password variable ${sasl.passwordEnv} is not set (sasl.passwordEnv names it)`,
    );
  return { mechanism: sasl.mechanism, username: sasl.username, password };
};
