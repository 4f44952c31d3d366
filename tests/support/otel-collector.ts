/**
 * A real OpenTelemetry Collector for the export tests (built once from the Go module proxy by
 * infra/otel/collector.sh): its OTLP receiver decodes what dspex sends, and its OTLP/HTTP exporter
 * forwards it as OTLP/JSON to a sink in this process, where the test reads it.
 */
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { type AddressInfo, connect, createServer as createTcpServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { onCleanUp, temporaryFolder, trackChild } from "./cleanup.ts";
import { stopChild } from "./cli.ts";
import { root } from "./processes.ts";
import { eventually } from "./waits.ts";

type Attributes = Record<string, string | number | boolean>;

/** One span as the collector forwarded it (ids in hex, times in nanoseconds as text). */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Attributes;
  status: { code?: number; message?: string };
  resource: Attributes;
}

export interface ReceivedMetric {
  name: string;
  unit: string;
  /** Sum of the counts of its histogram points. */
  count: number;
  resource: Attributes;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
type OtlpAttributes = { key: string; value: OtlpValue }[] | undefined;

const attributesOf = (attributes: OtlpAttributes): Attributes =>
  Object.fromEntries(
    (attributes ?? []).map(({ key, value }) => [
      key,
      value.stringValue ??
        (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
        value.doubleValue ??
        value.boolValue ??
        "",
    ]),
  );

/** Builds the collector if needed; undefined (with the reason printed) where it cannot be built. */
export const collectorBinary = (): string | undefined => {
  try {
    return execFileSync("bash", [join(root, "infra/otel/collector.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      timeout: 900_000,
    }).trim();
  } catch (error) {
    console.warn(
      `skipping the OpenTelemetry tests: the collector could not be built (${(error as Error).message})`,
    );
    return undefined;
  }
};

/** A TCP port nothing listens on now. */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createTcpServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });

/** The sink the collector forwards to: every OTLP/JSON body it received, by signal. */
const startSink = async () => {
  const bodies = { traces: [] as unknown[], metrics: [] as unknown[] };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const signal =
        request.url === "/v1/traces" ? "traces" : request.url === "/v1/metrics" ? "metrics" : undefined;
      if (signal) bodies[signal].push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      response.writeHead(signal ? 200 : 404, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { bodies, port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
};

const collectorConfig = (receiverPort: number, sinkPort: number) => `
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${receiverPort}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:${sinkPort}
    encoding: json
    compression: none
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
    metrics:
      receivers: [otlp]
      exporters: [otlphttp]
`;

/**
 * The collector running, listening for OTLP/HTTP on `endpoint` (on `port` when given); `stop()` ends it
 * (also done after the file).
 */
export const startCollector = async (binary: string, port?: number) => {
  const sink = await startSink();
  const receiverPort = port ?? (await freePort());
  const config = join(temporaryFolder("otelcol-"), "config.yaml");
  writeFileSync(config, collectorConfig(receiverPort, sink.port));
  const child = trackChild(spawn(binary, ["--config", config], { stdio: ["ignore", "ignore", "pipe"] }));
  const output: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (line) => output.push(line));
  const stop = async () => {
    await stopChild(child);
    await sink.close();
  };
  const cleanup = onCleanUp(stop);
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`the collector exited:\n${output.join("\n")}`);
      return (await accepts(receiverPort)) || undefined;
    },
    30_000,
    "the collector's OTLP receiver",
  );
  const spans = (): ReceivedSpan[] =>
    sink.bodies.traces.flatMap(
      (body) =>
        (
          body as {
            resourceSpans?: {
              resource?: { attributes?: OtlpAttributes };
              scopeSpans?: {
                spans?: (Omit<ReceivedSpan, "attributes" | "resource"> & { attributes?: OtlpAttributes })[];
              }[];
            }[];
          }
        ).resourceSpans?.flatMap((rs) =>
          (rs.scopeSpans ?? []).flatMap((ss) =>
            (ss.spans ?? []).map((span) => ({
              ...span,
              parentSpanId: span.parentSpanId ?? "",
              status: span.status ?? {},
              attributes: attributesOf(span.attributes),
              resource: attributesOf(rs.resource?.attributes),
            })),
          ),
        ) ?? [],
    );
  const metrics = (): ReceivedMetric[] =>
    sink.bodies.metrics.flatMap(
      (body) =>
        (
          body as {
            resourceMetrics?: {
              resource?: { attributes?: OtlpAttributes };
              scopeMetrics?: {
                metrics?: {
                  name: string;
                  unit?: string;
                  histogram?: { dataPoints?: { count?: string | number }[] };
                }[];
              }[];
            }[];
          }
        ).resourceMetrics?.flatMap((rm) =>
          (rm.scopeMetrics ?? []).flatMap((sm) =>
            (sm.metrics ?? []).map((metric) => ({
              name: metric.name,
              unit: metric.unit ?? "",
              resource: attributesOf(rm.resource?.attributes),
              count: (metric.histogram?.dataPoints ?? []).reduce(
                (sum, point) => sum + Number(point.count ?? 0),
                0,
              ),
            })),
          ),
        ) ?? [],
    );
  return {
    endpoint: `http://127.0.0.1:${receiverPort}`,
    spans,
    metrics,
    stop: async () => {
      cleanup.remove();
      await stop();
    },
  };
};
