import type { EventOf } from "../../streams/events/index.ts";

/** One MetricRecorded as an OpenTelemetry measurement: which histogram, what value, which attributes. */
export interface MetricPoint {
  /** `dspex.` + the metric's name, with what instrument names may not hold replaced by `_`. */
  name: string;
  unit: string;
  value: number;
  attributes: Record<string, string>;
}

/** What an OpenTelemetry instrument name may hold: a letter first, then letters, digits, `_ . - /`. */
const instrumentName = (name: string) => `dspex.${name.replace(/[^A-Za-z0-9_.\-/]/g, "_")}`.slice(0, 255);

/**
 * A metric as a histogram measurement. Its labels become attributes, with the program; the execution id is
 * left out (one time series per execution would swamp a metrics backend: executions are in the traces).
 */
export const metricPointOf = (event: EventOf<"MetricRecorded">): MetricPoint => ({
  name: instrumentName(event.data.name),
  unit: event.data.unit,
  value: event.data.value,
  attributes: { ...event.data.labels, "dspex.program.id": event.data.programId },
});
