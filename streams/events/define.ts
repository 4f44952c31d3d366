import { z } from "zod";
import { type Envelope, type EventDraft, envelopeFields, envelopeOf } from "../envelope.ts";
import type { Topic } from "../topics.ts";

/** Turns the data of schema version `from` into the data of version `from + 1`. */
export type Upcaster = (data: unknown) => unknown;

export interface EventDefinition<Type extends string = string, Data extends z.ZodType = z.ZodType> {
  type: Type;
  topic: Topic;
  /** The version written today. */
  version: number;
  data: Data;
  /** upcasters[v] lifts data of version v to v + 1. */
  upcasters: Readonly<Record<number, Upcaster>>;
  envelope: z.ZodType<Envelope<Type, z.output<Data>>>;
  /** Builds a valid envelope of this type; throws EventValidationError on bad data. */
  create(draft: Omit<EventDraft<Type, z.input<Data>>, "type">): Envelope<Type, z.output<Data>>;
}

export class EventValidationError extends Error {
  constructor(
    readonly eventType: string,
    readonly issues: string,
  ) {
    super(`invalid ${eventType} event: ${issues}`);
    this.name = "EventValidationError";
  }
}

export const describeIssues = (error: z.ZodError): string =>
  error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`).join("; ");

/** Envelopes `create` made, validated (a schema's output validates as itself): encoding one checks no more. */
const created = new WeakSet<object>();
export const isCreatedEvent = (event: object): boolean => created.has(event);

export const defineEvent = <Type extends string, Data extends z.ZodType>(
  type: Type,
  spec: { topic: Topic; version?: number; data: Data; upcasters?: Record<number, Upcaster> },
): EventDefinition<Type, Data> => {
  const version = spec.version ?? 1;
  const envelope = z.object({
    ...envelopeFields,
    type: z.literal(type),
    schemaVersion: z.literal(version),
    data: spec.data,
  }) as unknown as z.ZodType<Envelope<Type, z.output<Data>>>;
  return {
    type,
    topic: spec.topic,
    version,
    data: spec.data,
    upcasters: spec.upcasters ?? {},
    envelope,
    create(draft) {
      const parsed = envelope.safeParse(envelopeOf({ ...draft, type }, version));
      if (!parsed.success) throw new EventValidationError(type, describeIssues(parsed.error));
      created.add(parsed.data);
      return parsed.data;
    },
  };
};
