/**
 * Bad input for every entry point: hand-written records (each with the reason it must be refused for)
 * and fast-check generators of bytes, JSON and broken envelopes. Shared by the bad-input suites.
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { maxEventBytes, maxNestingDepth } from "../../streams/codec.ts";
import { exampleEvents } from "../../streams/examples.ts";

const vectors = new URL("../vectors/", import.meta.url).pathname;

export interface BadRecord {
  name: string;
  value: Buffer;
  /** A part of the reason the codec (and so the dead letter) must give. */
  reason: string;
}

const example = (type: string) => {
  const event = exampleEvents().find((e) => e.type === type);
  if (!event) throw new Error(`no example ${type}`);
  return JSON.parse(JSON.stringify(event)) as Record<string, unknown> & { data: Record<string, unknown> };
};

const text = (value: unknown) =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value), "utf8");
const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;
/** An ExecutionRequested whose `question` input is `json` (raw JSON text). */
const requestWithInput = (json: string) => {
  const request = example("ExecutionRequested");
  return Buffer.from(
    JSON.stringify({ ...request, data: { ...request.data, inputs: { question: "@" } } }).replace('"@"', json),
  );
};

/** The shared invalid vectors (tests/vectors/invalid.json), which the Python suite reads too. */
const sharedVectors = (): BadRecord[] =>
  (JSON.parse(readFileSync(`${vectors}invalid.json`, "utf8")) as Array<Record<string, string>>).map(
    (vector) => ({
      name: `vector: ${vector.name}`,
      value: vector.base64 ? Buffer.from(vector.base64, "base64") : Buffer.from(vector.text!, "utf8"),
      reason: vector.reason!,
    }),
  );

/** Hand-written bad records: each is refused by the codec with the reason given. */
export const badRecords = (): BadRecord[] => {
  const request = example("ExecutionRequested");
  const dispatched = example("StepDispatched");
  return [
    ...sharedVectors(),
    { name: "empty value", value: Buffer.alloc(0), reason: "value is not JSON" },
    {
      name: "truncated JSON",
      value: text(JSON.stringify(request).slice(0, 60)),
      reason: "value is not JSON",
    },
    { name: "JSON null", value: text("null"), reason: "not a dspex envelope" },
    { name: "a bare string", value: text('"ExecutionRequested"'), reason: "not a dspex envelope" },
    { name: "a number", value: text("42"), reason: "not a dspex envelope" },
    { name: "an empty object", value: text("{}"), reason: "not a dspex envelope" },
    {
      name: "overlong UTF-8 encoding",
      value: Buffer.from([0x7b, 0xc0, 0xaf, 0x7d]),
      reason: "not valid UTF-8",
    },
    {
      name: "lone continuation byte",
      value: Buffer.concat([text(request).subarray(0, 20), Buffer.from([0x80])]),
      reason: "not valid UTF-8",
    },
    { name: "type is a number", value: text({ ...request, type: 7 }), reason: "not a dspex envelope" },
    {
      name: "type is an object",
      value: text({ ...request, type: { $ne: null } }),
      reason: "not a dspex envelope",
    },
    {
      name: "unknown event type",
      value: text({ ...request, type: "ExecutionRequestedd" }),
      reason: "unknown event type",
    },
    {
      name: "a huge unknown type",
      value: text({ ...request, type: "T".repeat(200_000) }),
      reason: "unknown event type",
    },
    { name: "schema version 0", value: text({ ...request, schemaVersion: 0 }), reason: "schemaVersion" },
    { name: "schema version 2.5", value: text({ ...request, schemaVersion: 2.5 }), reason: "schemaVersion" },
    {
      name: "schema version as a string",
      value: text({ ...request, schemaVersion: "1" }),
      reason: "schemaVersion",
    },
    {
      name: "a future schema version",
      value: text({ ...request, schemaVersion: 2 }),
      reason: "newer than this build",
    },
    { name: "missing data", value: text({ ...request, data: undefined }), reason: "data" },
    { name: "data is an array", value: text({ ...request, data: [] }), reason: "invalid ExecutionRequested" },
    {
      name: "missing requestId",
      value: text({ ...request, data: { ...request.data, requestId: undefined } }),
      reason: "data.requestId",
    },
    {
      name: "requestId too long",
      value: text({ ...request, data: { ...request.data, requestId: "r".repeat(5_000) } }),
      reason: "data.requestId",
    },
    {
      name: "inputs is null",
      value: text({ ...request, data: { ...request.data, inputs: null } }),
      reason: "data.inputs",
    },
    {
      name: "policy of the wrong type",
      value: text({ ...request, data: { ...request.data, policy: { maxRetries: "many" } } }),
      reason: "data.policy.maxRetries",
    },
    { name: "missing occurredAt", value: text({ ...request, occurredAt: undefined }), reason: "occurredAt" },
    { name: "causationId is a number", value: text({ ...request, causationId: 3 }), reason: "causationId" },
    { name: "empty key", value: text({ ...request, key: "" }), reason: "key" },
    {
      name: "step with an unknown module",
      value: text({ ...dispatched, data: { ...dispatched.data, module: "Teleport" } }),
      reason: "data.module",
    },
    {
      name: "step without a signature",
      value: text({ ...dispatched, data: { ...dispatched.data, signature: undefined } }),
      reason: "data.signature",
    },
    {
      name: `nesting ${maxNestingDepth + 1} levels deep`,
      value: requestWithInput(nested(maxNestingDepth)),
      reason: `deeper than ${maxNestingDepth} levels`,
    },
    {
      name: "nesting 100,000 levels deep",
      value: requestWithInput(nested(100_000)),
      reason: `deeper than ${maxNestingDepth} levels`,
    },
    {
      name: "an object nesting 10,000 levels deep",
      value: requestWithInput(`${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}`),
      reason: `deeper than ${maxNestingDepth} levels`,
    },
    {
      name: "over the size limit",
      value: requestWithInput(JSON.stringify("x".repeat(maxEventBytes))),
      reason: `over the limit of ${maxEventBytes}`,
    },
    {
      name: "over the size limit and not UTF-8",
      value: Buffer.alloc(maxEventBytes + 10, 0xff),
      reason: `over the limit of ${maxEventBytes}`,
    },
  ];
};

/** Odd but valid: a UTF-8 byte order mark before the JSON is skipped (TextDecoder does; Python uses utf-8-sig). */
export const withByteOrderMark = (): Buffer =>
  Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), text(example("ExecutionRequested"))]);

/** Valid JSON envelopes of every type with one field broken: removed, or replaced by any JSON value. */
export const brokenEnvelope: fc.Arbitrary<Buffer> = fc
  .record({
    event: fc.constantFrom(...exampleEvents()),
    inData: fc.boolean(),
    field: fc.nat(),
    replacement: fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined }),
  })
  .map(({ event, inData, field, replacement }) => {
    const copy = JSON.parse(JSON.stringify(event)) as Record<string, unknown>;
    const target =
      inData && typeof copy.data === "object" && copy.data ? (copy.data as Record<string, unknown>) : copy;
    const keys = Object.keys(target);
    target[keys[field % keys.length]!] = replacement;
    return text(copy);
  });

/** Bytes of every kind: random bytes, random JSON, random strings, and broken envelopes. */
export const anyBadBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  fc.jsonValue({ maxDepth: 4 }).map(text),
  fc.string({ unit: "binary", maxLength: 200 }).map((s) => Buffer.from(s, "utf8")),
  brokenEnvelope,
);
