/**
 * What the Kafka backend promises beyond the shared contract: how its topics are configured, that
 * envelope metadata travels in headers, keys route like every other backend, kafkajs logs go through
 * the backend's logger, a clean close, and clear errors.
 */
import { Socket } from "node:net";
import { ConfigResourceTypes } from "kafkajs";
import { firstValueFrom } from "rxjs";
import { afterAll, describe, expect, it } from "vitest";
import { Headers } from "../../streams/codec.ts";
import { ExecutionRequested } from "../../streams/events/index.ts";
import { type KafkaLog, openKafkaLog } from "../../streams/kafka/log.ts";
import type { Level } from "../../streams/kafka/logger.ts";
import { physicalTopic } from "../../streams/kafka/names.ts";
import { partitionFor } from "../../streams/partition.ts";
import { appendEvents } from "../../streams/store.ts";
import { freshKafkaConfig, kafkaForTests } from "../support/kafka.ts";
import { withKafkaAdmin } from "../support/kafka-admin.ts";
import { eventually } from "../support/waits.ts";

const found = kafkaForTests();
if ("skipReason" in found) console.log(`[kafka-backend] skipped: ${found.skipReason}`);

describe.skipIf("skipReason" in found)("Kafka backend", () => {
  const brokers = "brokers" in found ? found.brokers : "";
  const logs: KafkaLog[] = [];
  const open = async (overrides = {}, logger?: { log(level: Level, message: string): void }) => {
    const log = await openKafkaLog(freshKafkaConfig(overrides), logger ? { logger } : {});
    logs.push(log);
    return log;
  };
  afterAll(async () => {
    await Promise.all(logs.map((log) => log.close()));
  });

  const describeTopic = (topic: string) =>
    withKafkaAdmin(brokers, async (admin) => {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ["retention.ms"] }],
      });
      return {
        partitions: topics[0]!.partitions.length,
        retentionMs: resources[0]!.configEntries.find((e) => e.configName === "retention.ms")?.configValue,
      };
    });

  it("creates topics with the asked partitions (or the default) and retention.ms=-1, and grows them", async () => {
    const log = await open({ defaultPartitions: 2 });
    const ns = log.settings.namespace;
    await log.ensureTopics([{ topic: "explicit", partitions: 5 }]);
    await log.append([{ topic: "implicit", key: "k", value: "v" }]);
    expect(await describeTopic(physicalTopic(ns, "explicit"))).toEqual({ partitions: 5, retentionMs: "-1" });
    expect(await describeTopic(physicalTopic(ns, "implicit"))).toEqual({ partitions: 2, retentionMs: "-1" });
    await log.ensureTopics([{ topic: "implicit", partitions: 4 }]);
    expect((await describeTopic(physicalTopic(ns, "implicit"))).partitions).toBe(4);
  });

  it("carries envelope metadata in headers and routes keys with murmur2 like every backend", async () => {
    const log = await open();
    await log.ensureTopics([{ topic: "dspex.requests", partitions: 3 }]);
    const events = ["alpha", "beta", "gamma", "delta"].map((key, n) =>
      ExecutionRequested.create({
        stream: `request-${n}`,
        key,
        data: { requestId: `r-${n}`, programId: "qa", inputs: { question: `q${n}` } },
      }),
    );
    const positions = await appendEvents(log, events);
    expect(positions.map((p) => p.partition)).toEqual(events.map((e) => partitionFor(e.key, 3)));
    const records = await log.read("dspex.requests");
    expect(records).toHaveLength(4);
    for (const event of events) {
      const record = records.find((r) => r.key === event.key)!;
      expect(record.headers).toEqual({
        [Headers.type]: "ExecutionRequested",
        [Headers.id]: event.id,
        [Headers.schemaVersion]: "1",
        [Headers.contentType]: "application/json",
      });
      expect(JSON.parse(record.value.toString())).toEqual(JSON.parse(JSON.stringify(event)));
    }
  });

  it("returns the offsets the broker assigned, in the caller's order, across partitions and large sends", async () => {
    const log = await open();
    await log.ensureTopics([{ topic: "big", partitions: 3 }]);
    const value = "x".repeat(4_000);
    const records = Array.from({ length: 600 }, (_, i) => ({
      topic: "big",
      key: `k${i % 7}`,
      value: `${i}:${value}`,
    }));
    const positions = await log.append(records);
    const stored = await log.read("big");
    const byPosition = new Map(stored.map((r) => [`${r.partition}:${r.offset}`, r.value.toString()]));
    positions.forEach((p, i) => {
      expect(byPosition.get(`${p.partition}:${p.offset}`)).toBe(records[i]!.value);
    });
  });

  it("routes kafkajs logs through the backend's logger", async () => {
    const entries: Array<{ level: Level; message: string }> = [];
    const log = await open({}, { log: (level, message) => entries.push({ level, message }) });
    await log.ensureTopics([{ topic: "logged", partitions: 1 }]);
    await log.append([{ topic: "logged", key: "k", value: "v" }]);
    await new Promise<void>((resolve) => {
      const consumer = log.consume({ group: "logged", topics: ["logged"] }, () => {
        resolve();
        void consumer.stop();
      });
    });
    expect(entries.some((e) => e.message === "Consumer has joined the group")).toBe(true);
  });

  it("closes cleanly: consumers stop, and the closed log refuses work with a clear error", async () => {
    const log = await open();
    await log.ensureTopics([{ topic: "closing", partitions: 1 }]);
    const consumer = log.consume({ group: "closing", topics: ["closing"] }, () => undefined);
    await log.close();
    await expect(consumer.done).resolves.toBeUndefined();
    await expect(log.append([{ topic: "closing", key: "k", value: "v" }])).rejects.toThrow(/closed/);
  });

  it("leaves no connection open after close, even when a tail was stopped just before", async () => {
    const brokerPorts = new Set(brokers.split(",").map((address) => Number(address.split(":").at(-1))));
    const openSockets = () =>
      (process as unknown as { _getActiveHandles(): unknown[] })
        ._getActiveHandles()
        .filter(
          (h): h is Socket => h instanceof Socket && !h.destroyed && brokerPorts.has(h.remotePort ?? -1),
        ).length;
    const before = openSockets();
    const log = await openKafkaLog(freshKafkaConfig());
    await log.ensureTopics([{ topic: "tailed", partitions: 1 }]);
    await log.append([{ topic: "tailed", key: "k", value: "v" }]);
    await firstValueFrom(log.tail(["tailed"], { from: "beginning" }));
    await log.close();
    // A delete of the tail's scratch group still under way reconnected the closed admin client.
    await eventually(
      async () => (openSockets() <= before ? true : undefined),
      10_000,
      "the closed log's connections to close",
    );
  });

  it("refuses topic names Kafka cannot hold, and says which characters are allowed", async () => {
    const log = await open();
    await expect(log.append([{ topic: "no spaces", key: "k", value: "v" }])).rejects.toThrow(
      /letters, digits/,
    );
  });

  it("says which brokers it could not reach", async () => {
    await expect(
      openKafkaLog(
        { backend: "kafka", brokers: "127.0.0.1:1", namespace: "unreachable." },
        { logger: { log: () => undefined } },
      ),
    ).rejects.toThrow(/cannot reach Kafka at 127.0.0.1:1/);
  });
});
