import { resolve } from "node:path";
import { z } from "zod";
import { openEmbeddedLog } from "./embedded/log.ts";
import { openEventStoreDbLog } from "./eventstoredb/log.ts";
import { KafkaLogConfig } from "./kafka/config.ts";
import { openKafkaLog } from "./kafka/log.ts";
import type { EventLog } from "./log.ts";

/** Where the log lives: the one place that turns configuration into a backend. */
export const LogConfig = z.discriminatedUnion("backend", [
  z.object({
    backend: z.literal("embedded"),
    path: z.string().min(1).default(".dspex/log.db"),
    defaultPartitions: z.number().int().positive().optional(),
  }),
  z.object({
    backend: z.literal("eventstoredb"),
    /** Default: DSPEX_EVENTSTOREDB_URL, then esdb://127.0.0.1:2113?tls=false. */
    url: z.string().min(1).optional(),
    /** Prefix of every stream name, to keep several logs apart on one server. */
    namespace: z
      .string()
      .regex(/^[A-Za-z0-9._:/-]*$/, "letters, digits and . _ : / - only")
      .default(""),
    defaultPartitions: z.number().int().positive().optional(),
  }),
  KafkaLogConfig,
]);
export type LogConfig = z.input<typeof LogConfig>;

export const openLog = async (config: LogConfig): Promise<EventLog> => {
  const parsed = LogConfig.parse(config);
  switch (parsed.backend) {
    case "embedded":
      return openEmbeddedLog({ path: resolve(parsed.path), defaultPartitions: parsed.defaultPartitions });
    case "eventstoredb":
      return openEventStoreDbLog(parsed);
    case "kafka":
      return openKafkaLog(parsed);
  }
};
