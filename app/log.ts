import type { EventLog } from "../streams/log.ts";
import { type LogConfig, openLog } from "../streams/open.ts";
import { type DspexConfig, loadConfig } from "./config.ts";

/** Where the log is and how it is configured; each unset one comes from DSPEX_* or the config file. */
export interface LogOptions {
  /** `embedded`, `kafka` or `eventstoredb`. */
  backend?: string;
  /** The embedded log's file. */
  log?: string;
  /** The config file (default: dspex.config.json when present). */
  config?: string;
}

/** The options given win over DSPEX_* variables, which win over the config file. */
export const configOf = (options: LogOptions, env: NodeJS.ProcessEnv = process.env): DspexConfig =>
  loadConfig(
    options.config ?? "dspex.config.json",
    {
      ...env,
      ...(options.backend ? { DSPEX_BACKEND: options.backend } : {}),
      ...(options.log ? { DSPEX_LOG_PATH: options.log } : {}),
    },
    Boolean(options.config),
  );

export const logConfigOf = (config: DspexConfig): LogConfig => {
  switch (config.backend) {
    case "embedded":
      return {
        backend: "embedded",
        path: config.embedded.path,
        defaultPartitions: config.embedded.partitions,
      };
    case "kafka":
      return { backend: "kafka", ...config.kafka };
    case "eventstoredb":
      return { backend: "eventstoredb", url: config.eventstoredb.url };
  }
};

/** Where the log is, in words, for messages. */
export const describeLog = (config: DspexConfig): string => {
  switch (config.backend) {
    case "embedded":
      return `the embedded log ${config.embedded.path}`;
    case "kafka":
      return `Kafka at ${config.kafka.brokers.join(",")}`;
    case "eventstoredb":
      return `EventStoreDB at ${config.eventstoredb.url}`;
  }
};

/** The log the options name, opened, with the configuration it was opened from. */
export const openConfiguredLog = async (
  options: LogOptions,
): Promise<{ log: EventLog; config: DspexConfig }> => {
  const config = configOf(options);
  return { log: await openLog(logConfigOf(config)), config };
};
