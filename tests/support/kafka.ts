/**
 * The Kafka broker of a test run, found once in vitest's globalSetup:
 *  1. DSPEX_KAFKA_BROKERS when set (a broker someone else runs — infra/test.sh sets it);
 *  2. else a Kafka container (@testcontainers/kafka) when a Docker engine is reachable;
 *  3. else the local broker of infra/kafka/start.sh (Maven Central jars, no Docker), stopped afterwards
 *     unless it was already running.
 * Test workers get the answer through DSPEX_KAFKA_BROKERS (or DSPEX_KAFKA_SKIP_REASON), which the forked
 * workers inherit, and through provide("dspexKafka") for inject(). When none of the three works, the Kafka
 * suites are skipped with the reason — never a stand-in broker. (This file must not import "vitest":
 * globalSetup loads it too.)
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";
import type { KafkaLogConfig } from "../../streams/kafka/config.ts";
import type { BackendUnderTest } from "./backends.ts";
import { brokerProblem, deleteTopicsWithPrefix } from "./kafka-admin.ts";

export type KafkaForTests = { brokers: string; source: string } | { skipReason: string };

declare module "vitest" {
  export interface ProvidedContext {
    dspexKafka: KafkaForTests;
  }
}

const run = promisify(execFile);
const infra = fileURLToPath(new URL("../../infra/kafka/", import.meta.url));
export const kafkaImage = "confluentinc/cp-kafka:7.9.0";

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

const dockerProblem = async (): Promise<string | undefined> => {
  try {
    const { getContainerRuntimeClient } = await import("testcontainers");
    await getContainerRuntimeClient();
    return undefined;
  } catch (error) {
    return message(error);
  }
};

type Started = { found: KafkaForTests; stop: () => Promise<void> };
const nothingToStop = async () => undefined;

const startContainer = async (): Promise<Started> => {
  const { KafkaContainer } = await import("@testcontainers/kafka");
  const container = await new KafkaContainer(kafkaImage).withKraft().start();
  return {
    found: { brokers: `${container.getHost()}:${container.getMappedPort(9093)}`, source: kafkaImage },
    stop: async () => {
      await container.stop();
    },
  };
};

const localBrokerRunning = async (): Promise<boolean> =>
  run("bash", [`${infra}status.sh`]).then(
    () => true,
    () => false,
  );

const startLocalBroker = async (): Promise<Started> => {
  const alreadyRunning = await localBrokerRunning();
  try {
    const { stdout } = await run("bash", [`${infra}start.sh`], { maxBuffer: 16 * 1024 * 1024 });
    const brokers = stdout.trim().split("\n").at(-1)!;
    return {
      found: { brokers, source: alreadyRunning ? "infra/kafka (already running)" : "infra/kafka/start.sh" },
      stop: alreadyRunning
        ? nothingToStop
        : async () => {
            await run("bash", [`${infra}stop.sh`]);
          },
    };
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim().split("\n").slice(-5).join(" | ");
    return {
      found: { skipReason: `infra/kafka/start.sh failed: ${stderr || message(error)}` },
      stop: nothingToStop,
    };
  }
};

const findKafka = async (): Promise<Started> => {
  const given = process.env.DSPEX_KAFKA_BROKERS;
  if (given) {
    const problem = await brokerProblem(given);
    const found = problem
      ? { skipReason: `no Kafka broker answers at DSPEX_KAFKA_BROKERS=${given} (${problem})` }
      : { brokers: given, source: "DSPEX_KAFKA_BROKERS" };
    return { found, stop: nothingToStop };
  }
  const problem = await dockerProblem();
  if (!problem) {
    try {
      return await startContainer();
    } catch (error) {
      console.warn(
        `[kafka] Docker is reachable but ${kafkaImage} did not start (${message(error)}); trying infra/kafka`,
      );
    }
  }
  return startLocalBroker();
};

/** Every test log's namespace starts with this run's prefix, so the teardown removes what the run created. */
const testNamespacePrefix = (runId: string) => `dspex-test-${runId}-`;

/** Deletes this run's topics (they keep everything: retention.ms=-1), leaving other runs' alone. */
const deleteRunTopics = (brokers: string, runId: string): Promise<void> =>
  deleteTopicsWithPrefix(brokers, testNamespacePrefix(runId)).catch((error) =>
    console.warn(`[kafka] could not delete this run's topics: ${message(error)}`),
  );

/** For tests/global-setup.ts: finds or starts a broker, shares it with the workers, returns the teardown. */
export const setupKafka = async (project: TestProject): Promise<() => Promise<void>> => {
  const runId = randomUUID().slice(0, 8);
  process.env.DSPEX_TEST_RUN_ID = runId;
  const { found, stop } = await findKafka();
  if ("brokers" in found) {
    process.env.DSPEX_KAFKA_BROKERS = found.brokers;
    delete process.env.DSPEX_KAFKA_SKIP_REASON;
    console.log(`[kafka] brokers ${found.brokers} (${found.source})`);
  } else {
    delete process.env.DSPEX_KAFKA_BROKERS;
    process.env.DSPEX_KAFKA_SKIP_REASON = found.skipReason;
    console.log(`[kafka] skipped: ${found.skipReason}`);
  }
  project.provide("dspexKafka", found);
  return async () => {
    if ("brokers" in found) await deleteRunTopics(found.brokers, runId);
    await stop();
  };
};

/** In a test worker: the broker globalSetup found, or why there is none. */
export const kafkaForTests = (): KafkaForTests => {
  const brokers = process.env.DSPEX_KAFKA_BROKERS;
  if (brokers) return { brokers, source: "DSPEX_KAFKA_BROKERS" };
  return {
    skipReason:
      process.env.DSPEX_KAFKA_SKIP_REASON ??
      "no broker: DSPEX_KAFKA_BROKERS is not set (tests/global-setup.ts sets it when it finds or starts one)",
  };
};

export const kafkaBrokersForTests = (): string | undefined => {
  const found = kafkaForTests();
  return "brokers" in found ? found.brokers : undefined;
};

let logs = 0;

/** A Kafka log of its own: every topic, group and transactional id under a fresh namespace. */
export const freshKafkaConfig = (
  overrides: Partial<KafkaLogConfig> = {},
): KafkaLogConfig & { backend: "kafka" } => ({
  backend: "kafka",
  brokers: kafkaBrokersForTests(),
  namespace: `${testNamespacePrefix(process.env.DSPEX_TEST_RUN_ID ?? "adhoc")}${process.pid.toString(36)}${(logs++).toString(36)}.`,
  // Short enough that a killed member's partitions move on within a test; every broker allows 6 s.
  sessionTimeoutMs: 6_000,
  heartbeatIntervalMs: 500,
  ...overrides,
});

export const kafkaBackend: BackendUnderTest = {
  name: "kafka",
  skipReason: () => {
    const found = kafkaForTests();
    return "skipReason" in found ? found.skipReason : undefined;
  },
  freshConfig: () => freshKafkaConfig(),
};
