import { type Admin, Kafka, type KafkaConfig, logLevel } from "kafkajs";

/**
 * Runs `use` with a connected kafkajs admin client of `brokers` ("host:port,host:port" or a list) and
 * disconnects it after, whatever happened: the one admin setup of the tests and benchmarks.
 */
export const withKafkaAdmin = async <T>(
  brokers: string | readonly string[],
  use: (admin: Admin) => Promise<T>,
  options: Partial<KafkaConfig> = {},
): Promise<T> => {
  const admin = new Kafka({
    clientId: "dspex-tools",
    brokers: typeof brokers === "string" ? brokers.split(",") : [...brokers],
    logLevel: logLevel.NOTHING,
    ...options,
  }).admin();
  try {
    await admin.connect();
    return await use(admin);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
};

/** Deletes every topic whose name starts with `prefix`: what one run or one namespace created. */
export const deleteTopicsWithPrefix = (brokers: string, prefix: string): Promise<void> =>
  withKafkaAdmin(brokers, async (admin) => {
    const topics = (await admin.listTopics()).filter((topic) => topic.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics });
  });

/** Why the brokers cannot be used, if no broker answers a metadata request (quickly: a probe). */
export const brokerProblem = (brokers: string): Promise<string | undefined> =>
  withKafkaAdmin(
    brokers,
    async (admin) => {
      await admin.listTopics();
      return undefined;
    },
    { retry: { retries: 1 }, connectionTimeout: 2_000 },
  ).catch((error: unknown) => (error instanceof Error ? error.message : String(error)));
