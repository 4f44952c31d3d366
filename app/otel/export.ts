import { randomUUID } from "node:crypto";
import { type Histogram, SpanKind, SpanStatusCode, TraceFlags } from "@opentelemetry/api";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { type Resource, resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import type { Subscription } from "rxjs";
import { decodeRecord } from "../../streams/codec.ts";
import type { DspexEvent, EventOf } from "../../streams/events/index.ts";
import type { EventLog, LogRecord } from "../../streams/log.ts";
import { Topics } from "../../streams/topics.ts";
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME } from "./conventions.ts";
import { metricPointOf } from "./metrics.ts";
import { executionSpans, type SpanDraft, type SpanOptions, withoutPayloads } from "./spans.ts";

export interface OtelExportOptions extends SpanOptions {
  log: EventLog;
  /**
   * The OTLP/HTTP base URL (`http://host:4318`: `/v1/traces` and `/v1/metrics` are added). Unset: the
   * standard OTEL_EXPORTER_OTLP_ENDPOINT (or the per-signal variables), else http://localhost:4318.
   */
  endpoint?: string;
  /** The consumer group: processes of the same group share the work (default `dspex-otel`). */
  group?: string;
  /** Where a group with no committed offset starts (default: the beginning: every execution on the log). */
  from?: "beginning" | "end";
  /** The resource's service.name (default: OTEL_SERVICE_NAME, else `dspex`). */
  serviceName?: string;
  /** Told once when the endpoint cannot be reached and once when it is back. */
  onStatus?: (text: string) => void;
  /** Told after every batch that exported something. */
  onExported?: (totals: ExportTotals) => void;
}

export interface ExportTotals {
  executions: number;
  spans: number;
  metricPoints: number;
}

export interface OtelExport {
  /** Resolves once the exporter is a member of its group and follows the log. */
  ready: Promise<void>;
  /** Finishes the batch in hand (if the endpoint can be reached), then stops; what is not exported stays on the log. */
  stop(): Promise<void>;
  /** Rejects if the exporter failed. */
  done: Promise<void>;
  totals(): ExportTotals;
}

/** The topics an execution's events are on, besides its result. */
const executionTopics = [Topics.executions, Topics.steps, Topics.stepResults] as const;

/** Where the traces and metrics go, in words. */
export const describeEndpoint = (endpoint?: string, env: NodeJS.ProcessEnv = process.env): string =>
  endpoint ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "http://localhost:4318";

const signalUrl = (endpoint: string | undefined, signal: "traces" | "metrics") =>
  endpoint === undefined ? undefined : `${endpoint.replace(/\/+$/, "")}/v1/${signal}`;

const hrTime = (ms: number): [number, number] => {
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.round((ms - seconds * 1000) * 1e6)];
};

/** A span drafted from the log as the SDK's finished span, ready for any SpanExporter. */
export const readableSpanOf = (draft: SpanDraft, resource: Resource): ReadableSpan => {
  const context = { traceId: draft.traceId, spanId: draft.spanId, traceFlags: TraceFlags.SAMPLED };
  return {
    name: draft.name,
    kind: draft.kind === "client" ? SpanKind.CLIENT : SpanKind.INTERNAL,
    spanContext: () => context,
    parentSpanContext: draft.parentSpanId
      ? { traceId: draft.traceId, spanId: draft.parentSpanId, traceFlags: TraceFlags.SAMPLED }
      : undefined,
    startTime: hrTime(draft.startMs),
    endTime: hrTime(draft.endMs),
    duration: hrTime(draft.endMs - draft.startMs),
    status: draft.error
      ? { code: SpanStatusCode.ERROR, message: draft.error }
      : { code: SpanStatusCode.UNSET },
    attributes: draft.attributes,
    links: [],
    events: [],
    ended: true,
    resource,
    instrumentationScope: { name: "dspex" },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** Every event of each execution on the execution topics, as a tail has read them so far. */
class ExecutionIndex {
  private readonly events = new Map<string, DspexEvent[]>();
  /** Per `topic/partition`: the next offset the tail will hand over, and when it last handed one. */
  private readonly nextOffsets = new Map<string, number>();
  private readonly lastReadAt = new Map<string, number>();
  /** Where each execution's result is on dspex.results: once the group committed past it, its events can go. */
  private readonly results = new Map<string, { partition: number; offset: number }>();
  /** The group's committed offsets on dspex.results, as last read. */
  private committed: ReadonlyMap<number, number> = new Map();
  /** Executions exported already (by any process): events of theirs that the tail reads late are not kept. */
  private readonly forgotten = new Set<string>();
  /** Why the tail stopped, if it failed. */
  tailFailure: unknown;

  constructor(private readonly options: SpanOptions) {}

  add(record: LogRecord) {
    this.nextOffsets.set(`${record.topic}/${record.partition}`, record.offset + 1);
    this.lastReadAt.set(`${record.topic}/${record.partition}`, Date.now());
    const decoded = decodeRecord(record);
    if (!decoded.ok) return;
    const executionId = (decoded.event.data as { executionId?: unknown }).executionId;
    if (typeof executionId !== "string" || this.forgotten.has(executionId)) return;
    if (record.topic === Topics.results) {
      this.results.set(executionId, { partition: record.partition, offset: record.offset });
      if (record.offset < (this.committed.get(record.partition) ?? 0)) this.forget(executionId);
      return;
    }
    const known = this.events.get(executionId);
    const event = withoutPayloads(decoded.event, this.options);
    if (known) known.push(event);
    else this.events.set(executionId, [event]);
  }

  nextOffset(topic: string, partition: number) {
    return this.nextOffsets.get(`${topic}/${partition}`) ?? 0;
  }

  lastRead(topic: string, partition: number) {
    return this.lastReadAt.get(`${topic}/${partition}`) ?? 0;
  }

  eventsOf(executionId: string): readonly DspexEvent[] {
    return this.events.get(executionId) ?? [];
  }

  private forget(executionId: string) {
    this.results.delete(executionId);
    this.events.delete(executionId);
    this.forgotten.add(executionId);
  }

  /** Forgets the executions whose result the group has committed (this process or another exported them). */
  forgetCommitted(committed: ReadonlyMap<number, number>) {
    this.committed = committed;
    for (const [executionId, { partition, offset }] of this.results)
      if (offset < (committed.get(partition) ?? 0)) this.forget(executionId);
  }

  /** Resolves once the tail has handed over every record the execution topics held when it was called. */
  async untilCaughtUp(log: EventLog) {
    const since = Date.now();
    const pending = (
      await Promise.all(
        executionTopics.map(async (topic) =>
          [...(await log.endOffsets(topic))].map(([partition, end]) => ({
            topic,
            partition,
            end,
            checkedAt: 0,
          })),
        ),
      )
    ).flat();
    const deadline = since + 120_000;
    while (pending.length > 0) {
      if (this.tailFailure) throw this.tailFailure;
      for (let i = pending.length - 1; i >= 0; i--) {
        const partitionEnd = pending[i]!;
        const { topic, partition, end } = partitionEnd;
        const next = this.nextOffset(topic, partition);
        let done = next >= end;
        // On Kafka, transaction markers take offsets that no record has: a partition whose tail stalled
        // short of its end may have no record left there.
        if (
          !done &&
          Date.now() - Math.max(since, this.lastRead(topic, partition), partitionEnd.checkedAt) > 300
        ) {
          partitionEnd.checkedAt = Date.now();
          done = (await log.read(topic, { partition, fromOffset: next, limit: 1 })).length === 0;
        }
        if (done) pending.splice(i, 1);
      }
      if (pending.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `the tail of ${pending.map((p) => `${p.topic}[${p.partition}]`).join(", ")} fell 2 min behind`,
        );
      await sleep(20);
    }
  }
}

class Stopped extends Error {}

/**
 * Exports the log to OpenTelemetry over OTLP/HTTP: each finished execution as a trace (see
 * `executionSpans`), each MetricRecorded as a histogram measurement. A consumer group on dspex.results and
 * dspex.metrics says what to export; an execution's other events come from a tail of the execution topics
 * (they are keyed by session, its result by request: no one partition holds both). A batch's offsets are
 * committed once its spans were accepted by the endpoint: at least once, with the same trace and span ids
 * on a repeat.
 */
export const startOtelExport = (options: OtelExportOptions): OtelExport => {
  const { log } = options;
  const group = options.group ?? "dspex-otel";
  const resource = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: options.serviceName ?? process.env.OTEL_SERVICE_NAME ?? "dspex",
    // Each exporter's histograms are cumulative from its start: one series per process, not one shared.
    [ATTR_SERVICE_INSTANCE_ID]: randomUUID(),
  });
  const traceExporter = new OTLPTraceExporter({ url: signalUrl(options.endpoint, "traces") });
  const meterProvider = new MeterProvider({
    resource,
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: signalUrl(options.endpoint, "metrics") }),
        exportIntervalMillis: 60_000,
      }),
    ],
  });
  const meter = meterProvider.getMeter("dspex");
  const histograms = new Map<string, Histogram>();
  const histogram = (name: string, unit: string) => {
    const key = `${name}\u0000${unit}`;
    const known = histograms.get(key) ?? meter.createHistogram(name, { unit });
    histograms.set(key, known);
    return known;
  };
  const totals: ExportTotals = { executions: 0, spans: 0, metricPoints: 0 };
  const where = describeEndpoint(options.endpoint);
  let stopping = false;
  let unreachable = false;
  const reachable = (ok: boolean, reason = "") => {
    if (ok === !unreachable) return;
    unreachable = !ok;
    options.onStatus?.(ok ? `${where} is back` : `cannot export to ${where}: ${reason}; retrying`);
  };

  const index = new ExecutionIndex(options);
  const forgetCommitted = async () => index.forgetCommitted(await log.committed(group, Topics.results));
  let tail: Subscription | undefined;
  // What the group committed is known before the tail starts: those executions' events are not kept.
  const following = forgetCommitted().then(() => {
    if (stopping) return;
    tail = log.tail([...executionTopics, Topics.results], { from: "beginning" }).subscribe({
      next: (record) => index.add(record),
      error: (error) => {
        index.tailFailure = error;
      },
    });
  });

  const exportSpans = async (spans: ReadableSpan[]) => {
    for (let delay = 500; ; delay = Math.min(delay * 2, 30_000)) {
      const result = await new Promise<{ code: number; error?: Error }>((resolve) =>
        traceExporter.export(spans, resolve),
      );
      if (result.code === 0) return reachable(true);
      reachable(false, result.error?.message ?? "refused");
      if (stopping) throw new Stopped();
      await sleep(delay);
    }
  };

  const pruning = setInterval(() => void forgetCommitted().catch(() => undefined), 10_000);
  pruning.unref();

  const consumer = log.consume(
    { group, topics: [Topics.results, Topics.metrics], from: options.from ?? "beginning" },
    async (batch) => {
      const events = batch.records.flatMap((record) => {
        const decoded = decodeRecord(record);
        return decoded.ok ? [decoded.event] : []; // an invalid record: the topic's own consumers dead-letter it
      });
      const results = events.filter(
        (event): event is EventOf<"ExecutionCompleted"> | EventOf<"ExecutionFailed"> =>
          event.type === "ExecutionCompleted" || event.type === "ExecutionFailed",
      );
      let points = 0;
      for (const event of events) {
        if (event.type !== "MetricRecorded") continue;
        const point = metricPointOf(event);
        histogram(point.name, point.unit).record(point.value, point.attributes);
        points++;
      }
      if (results.length > 0) {
        await following;
        await index.untilCaughtUp(log);
        const drafts = results.flatMap((result) =>
          executionSpans(
            result.data.executionId,
            [...index.eventsOf(result.data.executionId), result],
            options,
          ),
        );
        await exportSpans(drafts.map((draft) => readableSpanOf(draft, resource)));
        totals.executions += results.length;
        totals.spans += drafts.length;
      }
      if (points > 0) {
        // Histograms are cumulative: a flush that fails is carried by the next one.
        await meterProvider.forceFlush().then(
          () => reachable(true),
          (error: Error) => reachable(false, error.message),
        );
        totals.metricPoints += points;
      }
      if (results.length + points > 0) options.onExported?.({ ...totals });
      await forgetCommitted();
    },
  );

  const done = consumer.done.catch((error) => {
    if (!(error instanceof Stopped)) throw error;
  });
  return {
    ready: Promise.all([consumer.joined, following]).then(() => undefined),
    done,
    totals: () => ({ ...totals }),
    async stop() {
      stopping = true;
      await consumer.stop().catch(() => undefined);
      await done.catch(() => undefined);
      clearInterval(pruning);
      await following.catch(() => undefined);
      tail?.unsubscribe();
      await meterProvider.shutdown().catch(() => undefined);
      await traceExporter.shutdown();
    },
  };
};
