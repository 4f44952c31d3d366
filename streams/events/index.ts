import type { AnyEnvelope } from "../envelope.ts";
import type { EventDefinition } from "./define.ts";
import { dlqEvents } from "./dlq.ts";
import { executionEvents } from "./executions.ts";
import { metricEvents } from "./metrics.ts";
import { optimizationEvents } from "./optimizations.ts";
import { requestEvents } from "./requests.ts";
import { resultEvents } from "./results.ts";
import { stepEvents } from "./steps.ts";
import { variableEvents } from "./variables.ts";

export * from "./common.ts";
export * from "./define.ts";
export * from "./dlq.ts";
export * from "./executions.ts";
export * from "./metrics.ts";
export * from "./optimizations.ts";
export * from "./requests.ts";
export * from "./results.ts";
export * from "./steps.ts";
export * from "./variables.ts";

/** Every event type dspex writes. */
export const catalog = [
  ...requestEvents,
  ...executionEvents,
  ...stepEvents,
  ...resultEvents,
  ...metricEvents,
  ...variableEvents,
  ...optimizationEvents,
  ...dlqEvents,
] as const;

type CatalogEntry = (typeof catalog)[number];
export type DspexEvent = CatalogEntry extends infer D
  ? D extends EventDefinition<infer T, infer S>
    ? import("../envelope.ts").Envelope<T, import("zod").output<S>>
    : never
  : never;
export type EventType = DspexEvent["type"];
export type EventOf<T extends EventType> = Extract<DspexEvent, { type: T }>;

const byType: ReadonlyMap<string, EventDefinition> = new Map(
  catalog.map((d) => [d.type, d as EventDefinition]),
);

export const definitionOf = (type: string): EventDefinition | undefined => byType.get(type);

export const isEventOf = <T extends EventType>(event: AnyEnvelope, type: T): event is EventOf<T> =>
  event.type === type;
