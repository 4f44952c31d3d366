import type { RecordMetadata } from "kafkajs";
import { describe, expect, it } from "vitest";
import {
  partitionSends,
  positionsOf,
  routeRecords,
  sendAll,
  transactionSends,
} from "../../../streams/kafka/records.ts";

/** Records for `dspex.steps` and `dspex.executions`, 3 partitions each, keyed so they spread. */
const routed = () =>
  routeRecords(
    ["a", "b", "c", "d", "e", "f", "g", "h"].flatMap((key, i) => [
      { topic: "dspex.steps", key, value: `step ${i}` },
      { topic: "dspex.executions", key, value: `execution ${i}` },
    ]),
    () => 3,
    (topic) => `ns.${topic}`,
  );

describe("Kafka sends outside a transaction: one partition each", () => {
  it("puts every record in exactly one send, each send bound for one partition, in the callers' order", () => {
    const records = routed();
    const sends = partitionSends(records, 1_000_000);
    for (const send of sends)
      expect(new Set(send.map((r) => `${r.physicalTopic}/${r.partition}`)).size).toBe(1);
    expect(
      sends
        .flat()
        .map((r) => r.index)
        .sort((a, b) => a - b),
    ).toEqual(records.map((r) => r.index));
    for (const send of sends)
      expect(send.map((r) => r.index)).toEqual([...send.map((r) => r.index)].sort((a, b) => a - b));
    expect(sends.length).toBeGreaterThan(2);
  });

  it("splits a partition's records past the size limit, and keeps their order across the sends", () => {
    const records = routed();
    const sends = partitionSends(records, 150);
    const perPartition = new Map<string, number[]>();
    for (const send of sends) {
      expect(send.reduce((sum, r) => sum + r.bytes, 0) <= 150 || send.length === 1).toBe(true);
      const id = `${send[0]!.physicalTopic}/${send[0]!.partition}`;
      perPartition.set(id, [...(perPartition.get(id) ?? []), ...send.map((r) => r.index)]);
    }
    for (const indexes of perPartition.values()) expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
  });

  it("hands back each record's position in the order the caller gave the records", async () => {
    const records = routed();
    const next = new Map<string, number>();
    const positions = await sendAll(partitionSends(records, 1_000_000), async (topicMessages) => {
      expect(topicMessages).toHaveLength(1);
      const [{ topic, messages }] = topicMessages as unknown as [
        { topic: string; messages: { partition: number }[] },
      ];
      const partition = messages[0]!.partition;
      const id = `${topic}/${partition}`;
      const baseOffset = next.get(id) ?? 0;
      next.set(id, baseOffset + messages.length);
      return [
        { topicName: topic, partition, errorCode: 0, baseOffset: String(baseOffset) } as RecordMetadata,
      ];
    });
    expect(positions.map((p) => p.topic)).toEqual(records.map((r) => r.topic));
    expect(positions.map((p) => p.partition)).toEqual(records.map((r) => r.partition));
    const seen = new Map<string, number>();
    for (const p of positions) {
      const id = `${p.topic}/${p.partition}`;
      expect(p.offset).toBe(seen.get(id) ?? 0);
      seen.set(id, p.offset + 1);
    }
  });
});

/** The broker's answer to one send: the base offset of one partition it wrote. */
const answer = (topic: string, partition: number, baseOffset: number) =>
  ({ topicName: topic, partition, errorCode: 0, baseOffset: String(baseOffset) }) as RecordMetadata;

describe("Kafka sends in a transaction", () => {
  it("go out in as few sends as the size limit allows, spanning partitions", () => {
    const sends = transactionSends(routed(), 1_000_000);
    expect(sends).toHaveLength(1);
    expect(new Set(sends[0]!.map((r) => `${r.physicalTopic}/${r.partition}`)).size).toBeGreaterThan(2);
  });

  it("refuse an answer that wrote a partition twice, so the transaction is aborted and repeated", () => {
    const records = routeRecords(
      [
        { topic: "dspex.steps", key: "a", value: "1" },
        { topic: "dspex.steps", key: "a", value: "2" },
      ],
      () => 3,
      (topic) => `ns.${topic}`,
    );
    const { physicalTopic, partition } = records[0]!;
    expect(positionsOf(records, [answer(physicalTopic, partition, 7)]).map((p) => p.offset)).toEqual([7, 8]);
    expect(() =>
      positionsOf(records, [answer(physicalTopic, partition, 7), answer(physicalTopic, partition, 9)]),
    ).toThrow(/twice/);
  });
});
