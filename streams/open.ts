import { resolve } from "node:path";
import { z } from "zod";
import { openEmbeddedLog } from "./embedded/log.ts";
import type { EventLog } from "./log.ts";

/** Where the log lives: the one place that turns configuration into a backend. */
export const LogConfig = z.discriminatedUnion("backend", [
  z.object({
    backend: z.literal("embedded"),
    path: z.string().min(1).default(".dspex/log.db"),
    defaultPartitions: z.number().int().positive().optional(),
  }),
]);
export type LogConfig = z.input<typeof LogConfig>;

export const openLog = async (config: LogConfig): Promise<EventLog> => {
  const parsed = LogConfig.parse(config);
  switch (parsed.backend) {
    case "embedded":
      return openEmbeddedLog({ path: resolve(parsed.path), defaultPartitions: parsed.defaultPartitions });
  }
};
