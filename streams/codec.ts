import { AnyEnvelope, type Envelope } from "./envelope.ts";
import {
  type DspexEvent,
  definitionOf,
  describeIssues,
  type EventDefinition,
  EventValidationError,
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
  const header = AnyEnvelope.safeParse(value);
  if (!header.success) return { ok: false, reason: `not a dspex envelope: ${describeIssues(header.error)}` };
  const { type, schemaVersion } = header.data;
  const definition = definitionOf(type);
  if (!definition) return { ok: false, reason: `unknown event type ${JSON.stringify(type)}` };
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

export const decodeBytes = (bytes: Uint8Array): Decoded => {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { ok: false, reason: "value is not valid UTF-8" };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `value is not JSON: ${(error as Error).message}` };
  }
  return parseEvent(json);
};

export const decodeRecord = (record: LogRecord): Decoded => decodeBytes(record.value);

/** Validates an event and turns it into a record for its catalog topic; throws EventValidationError. */
export const encodeEvent = (event: Envelope): AppendRecord => {
  const definition = definitionOf(event.type);
  if (!definition) throw new EventValidationError(event.type, "unknown event type");
  const parsed = definition.envelope.safeParse(event);
  if (!parsed.success) throw new EventValidationError(event.type, describeIssues(parsed.error));
  return {
    topic: definition.topic,
    key: event.key,
    value: JSON.stringify(parsed.data),
    headers: {
      [Headers.type]: event.type,
      [Headers.id]: event.id,
      [Headers.schemaVersion]: String(event.schemaVersion),
      [Headers.contentType]: "application/json",
    },
  };
};
