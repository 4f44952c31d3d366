/**
 * docs/wire-format.md, proved with a client that is not kafkajs: Python confluent-kafka (librdkafka)
 * produces an event written from the doc, which dspex decodes; and reads one written by dspex
 * (read_committed), checking it against the exported JSON Schema. Also: the doc's examples are current.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { findPython } from "../../processors/workers/python.ts";
import { Headers } from "../../streams/codec.ts";
import { exampleEvents } from "../../streams/examples.ts";
import { type KafkaLog, openKafkaLog } from "../../streams/kafka/log.ts";
import { documentedValues, exampleValues, wireFormatDocPath } from "../../streams/kafka/wire-format-doc.ts";
import { partitionFor } from "../../streams/partition.ts";
import { appendEvents, readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { freshKafkaConfig, kafkaForTests } from "../support/kafka.ts";

const run = promisify(execFile);
const repo = fileURLToPath(new URL("../../", import.meta.url));

/** Produces one request as docs/wire-format.md says, then reads the first result (read_committed). */
const pythonClient = `
import datetime, json, sys, time, uuid
import jsonschema
from confluent_kafka import Consumer, Producer

args = json.loads(sys.argv[1])
brokers, ns = args["brokers"], args["namespace"]
event = {
    "id": str(uuid.uuid4()), "type": "ExecutionRequested", "schemaVersion": 1,
    "stream": "request-py1", "key": "session-py",
    "occurredAt": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    "correlationId": "py1", "causationId": None,
    "data": {"requestId": "py1", "programId": "qa", "inputs": {"question": "Capital of France?"}},
}
delivered = {}
def on_delivery(error, message):
    delivered.update(error=str(error) if error else None, partition=message.partition(), offset=message.offset())
producer = Producer({"bootstrap.servers": brokers, "partitioner": "murmur2_random", "enable.idempotence": True})
producer.produce(ns + "dspex.requests", key=event["key"], value=json.dumps(event), on_delivery=on_delivery,
                 headers={"dspex-type": event["type"], "dspex-id": event["id"],
                          "dspex-schema-version": str(event["schemaVersion"]), "content-type": "application/json"})
producer.flush(30)
if delivered.get("error") or "offset" not in delivered:
    sys.exit(f"produce failed: {delivered}")

consumer = Consumer({"bootstrap.servers": brokers, "group.id": ns + "python-interop",
                     "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
consumer.subscribe([ns + "dspex.results"])
message, deadline = None, time.time() + 60
while message is None and time.time() < deadline:
    polled = consumer.poll(0.5)
    if polled is None:
        continue
    if polled.error():
        sys.exit(f"consume failed: {polled.error()}")
    message = polled
consumer.close()
if message is None:
    sys.exit("no result arrived within 60 s")
value = json.loads(message.value())
with open(f"schemas/{value['type']}.v{value['schemaVersion']}.json") as schema_file:
    jsonschema.validate(value, json.load(schema_file))
print(json.dumps({
    "produced": {"id": event["id"], "key": event["key"], **delivered},
    "consumed": {"key": message.key().decode(), "partition": message.partition(), "value": value,
                 "headers": {name: raw.decode() for name, raw in (message.headers() or [])}},
}))
`;

interface PythonReport {
  produced: { id: string; key: string; partition: number; offset: number };
  consumed: { key: string; partition: number; value: unknown; headers: Record<string, string> };
}

const kafka = kafkaForTests();
const python = findPython();
const skipReason = "skipReason" in kafka ? kafka.skipReason : python.reason;
if (skipReason) console.log(`[kafka-interop] skipped: ${skipReason}`);

describe("docs/wire-format.md", () => {
  it("shows the current example of every event type", () => {
    const doc = readFileSync(wireFormatDocPath, "utf8");
    expect(documentedValues(doc), "stale examples: run npx tsx streams/kafka/wire-format-doc.ts").toEqual(
      exampleValues(),
    );
    for (const event of exampleEvents()) expect(doc).toContain(`#### ${event.type} `);
  });
});

describe.skipIf(skipReason !== undefined)(
  "Kafka wire format with a non-kafkajs client (confluent-kafka)",
  () => {
    const logs: KafkaLog[] = [];
    afterAll(async () => {
      await Promise.all(logs.map((log) => log.close()));
    });

    it("decodes what Python produced and Python reads and validates what dspex produced", async () => {
      const brokers = "brokers" in kafka ? kafka.brokers : "";
      const config = freshKafkaConfig();
      const log = await openKafkaLog(config);
      logs.push(log);
      await log.ensureTopics([{ topic: Topics.requests }, { topic: Topics.results }]);
      const partitions = log.settings.defaultPartitions;
      const result = exampleEvents().find((event) => event.type === "ExecutionCompleted")!;
      await appendEvents(log, [result]);

      const { stdout } = await run(
        python.python ?? "python3",
        ["-c", pythonClient, JSON.stringify({ brokers, namespace: config.namespace })],
        { cwd: repo, timeout: 120_000 },
      );
      const report = JSON.parse(stdout.trim().split("\n").at(-1)!) as PythonReport;

      // dspex → Python: the envelope as JSON, the key, the headers, murmur2 partitioning.
      expect(report.consumed.value).toEqual(JSON.parse(JSON.stringify(result)));
      expect(report.consumed.key).toBe(result.key);
      expect(report.consumed.partition).toBe(partitionFor(result.key, partitions));
      expect(report.consumed.headers).toMatchObject({
        [Headers.type]: "ExecutionCompleted",
        [Headers.id]: result.id,
        [Headers.schemaVersion]: "1",
        [Headers.contentType]: "application/json",
      });

      // Python → dspex: a valid event, on the partition dspex itself picks for its key.
      expect(report.produced.partition).toBe(partitionFor(report.produced.key, partitions));
      const [read, ...more] = await readEvents(log, Topics.requests);
      expect(more).toEqual([]);
      expect(read && "event" in read ? read.event : read).toMatchObject({
        id: report.produced.id,
        type: "ExecutionRequested",
        key: "session-py",
        data: { requestId: "py1", programId: "qa", inputs: { question: "Capital of France?" } },
      });
      expect(read!.record).toMatchObject({
        partition: report.produced.partition,
        offset: report.produced.offset,
        headers: { [Headers.type]: "ExecutionRequested", [Headers.id]: report.produced.id },
      });
    }, 150_000);
  },
);
