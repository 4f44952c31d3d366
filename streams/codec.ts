import { AnyEnvelope, type Envelope } from "./envelope.ts";
import {
  type DspexEvent,
  definitionOf,
  describeIssues,
  type EventDefinition,
  EventValidationError,
  isCreatedEvent,
} from "./events/index.ts";
import type { AppendRecord, LogRecord } from "./log.ts";

/** Headers every dspex record carries, so routers and foreign clients need not parse the value. */
export const Headers = {
  type: "dspex-type",
  id: "dspex-id",
  schemaVersion: "dspex-schema-version",
  contentType: "content-type",
} as const;

export type Decoded = { ok: true; event: DspexEvent } | { ok: false; reason: string };

/**
 * The largest event on the wire, in bytes of JSON: under Kafka's default message.max.bytes with room for
 * the key and headers, and what confluent-kafka accepts by default. The Python consumers use the same.
 */
export const maxEventBytes = 1_000_000;

/** The deepest nesting of arrays and objects an event may have, the envelope counted (Python's too). */
export const maxNestingDepth = 64;

/** An event over `maxEventBytes`: refused before it reaches any backend. */
export class EventTooLargeError extends EventValidationError {
  constructor(eventType: string, size: number) {
    super(
      eventType,
      `the event is ${size} bytes of JSON, over the limit of ${maxEventBytes}: keep big data out of events`,
    );
    this.name = "EventTooLargeError";
  }
}

/** Text from the input quoted in a reason: its start only, so a huge value makes no huge reason. */
const shortened = (text: string, max = 100): string =>
  text.length > max ? `${text.slice(0, max)}... (${text.length} characters)` : text;

/** Whether arrays and objects nest deeper than `limit`; its own recursion stops at `limit`, so any depth is safe. */
export const nestsDeeperThan = (value: unknown, limit: number): boolean => {
  if (typeof value !== "object" || value === null) return false;
  if (limit <= 0) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (nestsDeeperThan(item, limit - 1)) return true;
  } else {
    for (const key in value)
      if (nestsDeeperThan((value as Record<string, unknown>)[key], limit - 1)) return true;
  }
  return false;
};

/** Lifts data written at `version` to the definition's current version, as far as upcasters reach. */
export const upcast = (
  definition: Pick<EventDefinition, "version" | "upcasters">,
  version: number,
  data: unknown,
): { version: number; data: unknown } => {
  let current = { version, data };
  while (current.version < definition.version) {
    const lift = definition.upcasters[current.version];
    if (!lift) break;
    current = { version: current.version + 1, data: lift(current.data) };
  }
  return current;
};

/** Validates any envelope against the catalog, upcasting older schema versions first. */
export const parseEvent = (value: unknown): Decoded => {
  if (nestsDeeperThan(value, maxNestingDepth))
    return { ok: false, reason: `value nests arrays and objects deeper than ${maxNestingDepth} levels` };
  const header = AnyEnvelope.safeParse(value);
  if (!header.success) return { ok: false, reason: `not a dspex envelope: ${describeIssues(header.error)}` };
  const { type, schemaVersion } = header.data;
  const definition = definitionOf(type);
  if (!definition) return { ok: false, reason: `unknown event type ${JSON.stringify(shortened(type))}` };
  if (schemaVersion > definition.version) {
    return {
      ok: false,
      reason: `${type} schema version ${schemaVersion} is newer than this build knows (${definition.version}): upgrade dspex`,
    };
  }
  const lifted = upcast(definition, schemaVersion, header.data.data);
  if (lifted.version !== definition.version) {
    return {
      ok: false,
      reason: `${type} schema version ${schemaVersion} has no upcaster to ${definition.version}`,
    };
  }
  const parsed = definition.envelope.safeParse({
    ...header.data,
    schemaVersion: lifted.version,
    data: lifted.data,
  });
  if (!parsed.success) return { ok: false, reason: `invalid ${type}: ${describeIssues(parsed.error)}` };
  return { ok: true, event: parsed.data as DspexEvent };
};

const utf8 = new TextDecoder("utf-8", { fatal: true });

const tooLarge = (bytes: number): Decoded => ({
  ok: false,
  reason: `value is ${bytes} bytes, over the limit of ${maxEventBytes}`,
});

export const decodeBytes = (bytes: Uint8Array): Decoded => {
  if (bytes.byteLength > maxEventBytes) return tooLarge(bytes.byteLength);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { ok: false, reason: "value is not valid UTF-8" };
  }
  return decodeJson(text);
};

/** A value held as text: the same checks as its UTF-8 bytes, without making them. */
const decodeText = (text: string): Decoded => {
  // A string's length bounds its UTF-8 size from below (by 3x from above): measure only when close.
  if (text.length * 3 > maxEventBytes) {
    const size = Buffer.byteLength(text, "utf8");
    if (size > maxEventBytes) return tooLarge(size);
  }
  return decodeJson(text);
};

const decodeJson = (text: string): Decoded => {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    // V8 reports JSON nested beyond its stack as a RangeError (not a SyntaxError).
    return error instanceof RangeError
      ? { ok: false, reason: `value nests arrays and objects deeper than ${maxNestingDepth} levels` }
      : { ok: false, reason: `value is not JSON: ${message}` };
  }
  return parseEvent(json);
};

/**
 * A record's event. One this process encoded (validated) and the backend hands back as such (`validatedId`)
 * is only parsed: the JSON on the log is the validated event, of the current schema version.
 */
export const decodeRecord = (record: LogRecord): Decoded => {
  if (record.text === undefined) return decodeBytes(record.value);
  if (record.validatedId !== undefined) {
    const event = JSON.parse(record.text) as DspexEvent;
    if (event.id === record.validatedId) return { ok: true, event };
  }
  return decodeText(record.text);
};

/** Records `encodeEvent` made: a backend that stores one as it is may hand it back with `validatedId`. */
const encoded = new WeakSet<AppendRecord>();
export const isEncodedEvent = (record: AppendRecord): boolean => encoded.has(record);

const validated = (definition: EventDefinition, event: Envelope) => {
  const parsed = definition.envelope.safeParse(event);
  if (!parsed.success) throw new EventValidationError(event.type, describeIssues(parsed.error));
  return parsed.data;
};

/** Validates an event and turns it into a record for its catalog topic; throws EventValidationError. */
export const encodeEvent = (event: Envelope): AppendRecord => {
  const definition = definitionOf(event.type);
  if (!definition) throw new EventValidationError(shortened(String(event.type)), "unknown event type");
  if (nestsDeeperThan(event, maxNestingDepth))
    throw new EventValidationError(
      event.type,
      `it nests arrays and objects deeper than ${maxNestingDepth} levels`,
    );
  const value = JSON.stringify(isCreatedEvent(event) ? event : validated(definition, event));
  // A string's length bounds its UTF-8 size from below (by 3x from above): measure only when close.
  if (value.length * 3 > maxEventBytes) {
    const size = Buffer.byteLength(value, "utf8");
    if (size > maxEventBytes) throw new EventTooLargeError(event.type, size);
  }
  const record = {
    topic: definition.topic,
    key: event.key,
    value,
    headers: {
      [Headers.type]: event.type,
      [Headers.id]: event.id,
      [Headers.schemaVersion]: String(event.schemaVersion),
      [Headers.contentType]: "application/json",
    },
  };
  encoded.add(record);
  return record;
};
