import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { withCatalog } from "../../../streams/catalog-doc.ts";
import { decodeBytes, encodeEvent, parseEvent, upcast } from "../../../streams/codec.ts";
import { catalog, ExecutionRequested, StepDispatched } from "../../../streams/events/index.ts";
import { exampleEvents } from "../../../streams/examples.ts";
import { schemaFolder } from "../../../streams/export-json-schema-path.ts";
import { derivedId, uuidV5 } from "../../../streams/ids.ts";
import { eventJsonSchemas } from "../../../streams/json-schema.ts";
import { partitionFor } from "../../../streams/partition.ts";

const vectors = new URL("../../vectors/", import.meta.url).pathname;
const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8"));

describe("the event catalog", () => {
  it("has a committed JSON Schema export that matches the zod schemas (run `npm run schemas` if not)", () => {
    const expected = eventJsonSchemas();
    expect(readdirSync(schemaFolder).sort()).toEqual([...expected.keys()].sort());
    for (const [name, content] of expected)
      expect(readFileSync(join(schemaFolder, name), "utf8"), name).toBe(content);
  });

  it("has the generated topic table and event catalog in the README (run `npm run schemas` if not)", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    expect(withCatalog(readme)).toBe(readme);
  });

  it("reads every event fixture ever written with today's code", () => {
    const files = readdirSync(join(vectors, "events"));
    expect(files.length).toBeGreaterThanOrEqual(catalog.length);
    for (const file of files) {
      const decoded = parseEvent(readJson(join(vectors, "events", file)));
      expect(decoded.ok ? "ok" : decoded.reason, file).toBe("ok");
    }
  });

  it("has a fixture for the current version of every event type", () => {
    const files = new Set(readdirSync(join(vectors, "events")));
    for (const definition of catalog)
      expect(files.has(`${definition.type}.v${definition.version}.json`)).toBe(true);
  });

  it("refuses every invalid vector with its reason", () => {
    for (const vector of readJson(join(vectors, "invalid.json"))) {
      const bytes = vector.base64 ? Buffer.from(vector.base64, "base64") : Buffer.from(vector.text, "utf8");
      const decoded = decodeBytes(bytes);
      expect(decoded.ok, vector.name).toBe(false);
      if (!decoded.ok) expect(decoded.reason, vector.name).toContain(vector.reason);
    }
  });

  it("round-trips an event through its record with routing headers", () => {
    const event = ExecutionRequested.create({
      stream: "request-1",
      key: "s1",
      data: { requestId: "1", programId: "qa", inputs: { question: "why?" } },
    });
    const record = encodeEvent(event);
    expect(record).toMatchObject({ topic: "dspex.requests", key: "s1" });
    expect(record.headers).toMatchObject({ "dspex-type": "ExecutionRequested", "dspex-id": event.id });
    expect(decodeBytes(Buffer.from(record.value as string))).toEqual({ ok: true, event });
  });

  it("decodes what it encodes, unchanged, for every event type", () => {
    for (const event of exampleEvents()) {
      const decoded = decodeBytes(Buffer.from(encodeEvent(event).value as string));
      expect(decoded, event.type).toEqual({ ok: true, event });
    }
  });

  it("fills defaults and explains bad data field by field", () => {
    const event = ExecutionRequested.create({
      stream: "request-1",
      key: "s1",
      data: { requestId: "1", programId: "qa", inputs: {} },
    });
    expect(event.data.overrides).toEqual({});
    expect(event.correlationId).toBe(event.id);
    expect(() =>
      StepDispatched.create({ stream: "x", key: "k", data: { stepId: "s", module: "Teleport" } as never }),
    ).toThrow(/data\.executionId.*data\.module/s);
  });

  it("upcasts old schema versions step by step", () => {
    const definition = {
      version: 3,
      upcasters: {
        1: (d: unknown) => ({ ...(d as object), b: 2 }),
        2: (d: unknown) => ({ ...(d as object), c: 3 }),
      },
    };
    expect(upcast(definition, 1, { a: 1 })).toEqual({ version: 3, data: { a: 1, b: 2, c: 3 } });
    expect(upcast(definition, 3, { a: 1 })).toEqual({ version: 3, data: { a: 1 } });
    expect(upcast({ version: 2, upcasters: {} }, 1, {})).toEqual({ version: 1, data: {} });
  });
});

describe("deterministic ids", () => {
  it("match the shared vectors (the Python side reads the same file)", () => {
    for (const v of readJson(join(vectors, "ids.json"))) {
      expect(v.fn === "uuidV5" ? uuidV5(v.name) : derivedId(v.cause, v.discriminator)).toBe(v.id);
    }
  });

  it("are stable for a cause and distinct per discriminator", () => {
    expect(derivedId("cause", "a")).toBe(derivedId("cause", "a"));
    expect(derivedId("cause", "a")).not.toBe(derivedId("cause", "b"));
    expect(derivedId("cause", "a")).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });
});

describe("partitioning", () => {
  it("routes keys like Kafka's default partitioner (murmur2)", () => {
    for (const v of readJson(join(vectors, "partitions.json")))
      expect(partitionFor(v.key, v.partitions)).toBe(v.partition);
    // Values from Apache Kafka's own murmur2 tests (clients UtilsTest).
    expect(partitionFor("21", 1 << 30)).toBe((-973932308 & 0x7fffffff) % (1 << 30));
    expect(partitionFor("foobar", 1000)).toBe((-790332482 & 0x7fffffff) % 1000);
  });
});
