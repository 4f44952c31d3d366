import type { Command } from "commander";

/** The options every command that touches the log shares (app/log.ts `LogOptions`). */
export const withLogOptions = (command: Command): Command =>
  command
    .option(
      "--backend <name>",
      "embedded, kafka or eventstoredb (default: config file, DSPEX_BACKEND, embedded)",
    )
    .option("--log <path>", "embedded log file (default: .dspex/log.db)")
    .option("--config <path>", "config file (default: dspex.config.json when present)");
