import { z } from "zod";
import { newId } from "./ids.ts";

/** Fields every event carries, whatever its type. */
export const envelopeFields = {
  id: z.uuid(),
  type: z.string().min(1),
  schemaVersion: z.number().int().positive(),
  stream: z.string().min(1),
  key: z.string().min(1),
  occurredAt: z.iso.datetime({ offset: true }),
  correlationId: z.string().min(1),
  causationId: z.string().min(1).nullable(),
};

export const EnvelopeHeader = z.object(envelopeFields);
export type EnvelopeHeader = z.infer<typeof EnvelopeHeader>;

export const AnyEnvelope = z.object({ ...envelopeFields, data: z.unknown() });
export type AnyEnvelope = z.infer<typeof AnyEnvelope>;

export interface Envelope<Type extends string = string, Data = unknown> extends EnvelopeHeader {
  type: Type;
  data: Data;
}

/** What the caller decides about an event; the rest of the envelope has defaults. */
export interface EventDraft<Type extends string, Data> {
  type: Type;
  data: Data;
  stream: string;
  key: string;
  id?: string;
  occurredAt?: string;
  correlationId?: string;
  causationId?: string | null;
  schemaVersion?: number;
}

/** Correlation and causation inherited from the event that caused this one. */
export const causedBy = (cause: Pick<EnvelopeHeader, "id" | "correlationId">) => ({
  correlationId: cause.correlationId,
  causationId: cause.id,
});

export const envelopeOf = <Type extends string, Data>(
  draft: EventDraft<Type, Data>,
  currentVersion: number,
): Envelope<Type, Data> => {
  const id = draft.id ?? newId();
  return {
    id,
    type: draft.type,
    schemaVersion: draft.schemaVersion ?? currentVersion,
    stream: draft.stream,
    key: draft.key,
    occurredAt: draft.occurredAt ?? new Date().toISOString(),
    correlationId: draft.correlationId ?? id,
    causationId: draft.causationId ?? null,
    data: draft.data,
  };
};
