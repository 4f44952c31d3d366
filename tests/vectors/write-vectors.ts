/**
 * Writes the shared test vectors that the TypeScript and Python suites both read.
 * Event fixtures are never overwritten: a file per (type, version) stays as first written,
 * so every schema version ever written keeps a fixture for the upcasting tests.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exampleEvents } from "../../streams/examples.ts";
import { derivedId, uuidV5 } from "../../streams/ids.ts";
import { partitionFor } from "../../streams/partition.ts";

const folder = new URL(".", import.meta.url).pathname;
const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

mkdirSync(join(folder, "events"), { recursive: true });
let added = 0;
for (const event of exampleEvents()) {
  const file = join(folder, "events", `${event.type}.v${event.schemaVersion}.json`);
  if (existsSync(file)) continue;
  writeFileSync(file, json(event));
  added++;
}

const valid = exampleEvents()[0]!;
const invalid = [
  { name: "not JSON", text: "{not json", reason: "value is not JSON" },
  { name: "invalid UTF-8", base64: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString("base64"), reason: "not valid UTF-8" },
  { name: "JSON but not an envelope", text: "[1,2,3]", reason: "not a dspex envelope" },
  { name: "unknown event type", text: JSON.stringify({ ...valid, type: "Teleported" }), reason: "unknown event type" },
  { name: "newer schema version", text: JSON.stringify({ ...valid, schemaVersion: 99 }), reason: "newer than this build" },
  { name: "missing id", text: JSON.stringify({ ...valid, id: undefined }), reason: "id" },
  { name: "id not a UUID", text: JSON.stringify({ ...valid, id: "42" }), reason: "id" },
  {
    name: "inputs of the wrong type",
    text: JSON.stringify({ ...valid, data: { ...(valid.data as object), inputs: "a string" } }),
    reason: "data.inputs",
  },
  {
    name: "missing required data field",
    text: JSON.stringify({ ...valid, data: { ...(valid.data as object), programId: undefined } }),
    reason: "data.programId",
  },
  {
    name: "nested too deep",
    text: JSON.stringify({ ...valid, data: { ...(valid.data as object), inputs: { question: "@" } } }).replace(
      '"@"',
      `${"[".repeat(100)}${"]".repeat(100)}`,
    ),
    reason: "deeper than 64 levels",
  },
  {
    name: "bad timestamp",
    text: JSON.stringify({ ...valid, occurredAt: "yesterday" }),
    reason: "occurredAt",
  },
];
writeFileSync(join(folder, "invalid.json"), json(invalid));

const ids = [
  ...["", "a", "execution-1/step", "ünïcødé"].map((name) => ({ fn: "uuidV5", name, id: uuidV5(name) })),
  ...[
    ["6a9f0c1e-1111-4222-8333-944455556666", "ExecutionStarted"],
    ["r1", "StepDispatched:classify:0"],
  ].map(([cause, discriminator]) => ({ fn: "derivedId", cause, discriminator, id: derivedId(cause!, discriminator!) })),
];
writeFileSync(join(folder, "ids.json"), json(ids));

const keys = ["", "a", "session-1", "execution-42", "ünïcødé", "a-little-bit-longer-string"];
const partitions = keys.flatMap((key) => [1, 3, 6, 12].map((n) => ({ key, partitions: n, partition: partitionFor(key, n) })));
writeFileSync(join(folder, "partitions.json"), json(partitions));

console.log(`vectors written (${added} new event fixtures)`);
