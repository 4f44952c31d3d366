import { Kafka, logLevel } from "kafkajs";
import { describe, expect, it } from "vitest";
import { type KafkajsCluster, reuseCoordinatorLookups } from "../../../streams/kafka/coordinators.ts";

type Factory = (options: object) => KafkajsCluster;
const kafka = () => new Kafka({ brokers: ["127.0.0.1:1"], logLevel: logLevel.NOTHING });
const factoryOf = (client: Kafka) => {
  const symbol = Object.getOwnPropertySymbols(client).find(
    (s) => s.description === "private:Kafka:createCluster",
  );
  const holder = client as unknown as Record<symbol, Factory>;
  return {
    create: (options: object = {}) => holder[symbol!]!(options),
    replace: (factory: Factory) => {
      holder[symbol!] = factory;
    },
  };
};

/** A cluster that answers coordinator lookups with `answer`, counting them. */
const countingCluster = (answer: () => Promise<unknown>) => {
  const cluster = {
    lookups: 0,
    findGroupCoordinatorMetadata: () => {
      cluster.lookups++;
      return answer();
    },
    findGroupCoordinator: () => Promise.resolve("broker"),
  };
  return cluster;
};

describe("the kafkajs patch (coordinator lookups reused)", () => {
  it("applies to the pinned kafkajs: its private cluster factory and lookup methods are where the patch expects", () => {
    const client = kafka();
    expect(reuseCoordinatorLookups(client)).toBe(true);
    const cluster = factoryOf(client).create();
    const original = Object.getPrototypeOf(cluster) as KafkajsCluster;
    expect(typeof original.findGroupCoordinatorMetadata).toBe("function");
    expect(typeof original.findGroupCoordinator).toBe("function");
    expect(cluster.findGroupCoordinatorMetadata).not.toBe(original.findGroupCoordinatorMetadata);
  });

  it("reuses a lookup for the same group, not for another", async () => {
    const client = kafka();
    const cluster = countingCluster(() => Promise.resolve({ host: "a" }));
    factoryOf(client).replace(() => cluster);
    reuseCoordinatorLookups(client);
    const patched = factoryOf(client).create();
    await patched.findGroupCoordinatorMetadata({ groupId: "g" });
    await patched.findGroupCoordinatorMetadata({ groupId: "g" });
    expect(cluster.lookups).toBe(1);
    await patched.findGroupCoordinatorMetadata({ groupId: "g", coordinatorType: 1 });
    expect(cluster.lookups).toBe(2);
  });

  it("forgets a failed lookup and marks 'coordinator not found' retriable", async () => {
    const client = kafka();
    const notFound = Object.assign(new Error("no coordinator"), { name: "KafkaJSGroupCoordinatorNotFound" });
    const cluster = countingCluster(() => Promise.reject(notFound));
    factoryOf(client).replace(() => cluster);
    reuseCoordinatorLookups(client);
    const patched = factoryOf(client).create();
    await expect(patched.findGroupCoordinatorMetadata({ groupId: "g" })).rejects.toMatchObject({
      retriable: true,
    });
    await expect(patched.findGroupCoordinatorMetadata({ groupId: "g" })).rejects.toThrow("no coordinator");
    expect(cluster.lookups).toBe(2);
  });
});
