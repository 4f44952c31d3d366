import { Command, InvalidArgumentError } from "commander";
import { describeLog, type LogOptions, openConfiguredLog } from "../../app/log.ts";
import { describeEndpoint, type ExportTotals, startOtelExport } from "../../app/otel/index.ts";
import { positiveInteger } from "../arguments.ts";
import { withLogOptions } from "../log.ts";
import { untilSignal } from "./processors.ts";

const say = (text: string) => console.log(`${new Date().toISOString().slice(11, 19)} ${text}`);

interface OtelCommandOptions extends LogOptions {
  endpoint?: string;
  group: string;
  from: string;
  content?: boolean;
  serviceName?: string;
  statusEvery: number;
}

const totalsLine = ({ executions, spans, metricPoints }: ExportTotals) =>
  `exported ${executions} executions (${spans} spans), ${metricPoints} metric points`;

/**
 * Exports the log to an OpenTelemetry backend until SIGINT/SIGTERM: executions as traces (GenAI
 * conventions), metrics as histograms, over OTLP/HTTP. Several processes with the same group share the work.
 */
export const otelCommand = withLogOptions(new Command("otel"))
  .description(
    "export executions (traces: execution → stages → LM calls) and metrics to OpenTelemetry over OTLP/HTTP, until SIGINT/SIGTERM",
  )
  .option(
    "--endpoint <url>",
    "the OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318 (default: OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318)",
  )
  .option("--group <name>", "the consumer group: processes of one group share the work", "dspex-otel")
  .option(
    "--from <where>",
    "where a new group starts: beginning (every execution on the log) or end",
    "beginning",
  )
  .option("--content", "also export the LM calls' messages and completions (they may hold personal data)")
  .option("--service-name <name>", "the resource's service.name (default: OTEL_SERVICE_NAME, else dspex)")
  .option("--status-every <ms>", "how often to print the totals while they change", positiveInteger, 5_000)
  .action(async (options: OtelCommandOptions) => {
    if (options.from !== "beginning" && options.from !== "end")
      throw new InvalidArgumentError("--from must be beginning or end");
    const { log, config } = await openConfiguredLog(options);
    const exporter = startOtelExport({
      log,
      endpoint: options.endpoint,
      group: options.group,
      from: options.from,
      content: options.content,
      serviceName: options.serviceName,
      onStatus: say,
    });
    let shown = totalsLine(exporter.totals());
    const status = setInterval(() => {
      const line = totalsLine(exporter.totals());
      if (line !== shown) say(line);
      shown = line;
    }, options.statusEvery);
    try {
      await exporter.ready;
      say(
        `exporting ${describeLog(config)} to ${describeEndpoint(options.endpoint)} as group ${options.group}; Ctrl-C to stop`,
      );
      await Promise.race([untilSignal(), exporter.done]);
    } finally {
      clearInterval(status);
      await exporter.stop();
      say(totalsLine(exporter.totals()));
      await log.close();
    }
  });
