import { logLevel as KafkaLevel, type LogEntry, type logCreator } from "kafkajs";

/**
 * The log of the Kafka backend. streams/ has no shared logger yet, so this is a small one: levels,
 * one JSON line per entry on stderr, level from DSPEX_LOG_LEVEL (error | warn | info | debug; default warn).
 * Anything with `log(level, message, fields)` can replace it (pass `logger` in the options).
 */
export type Level = "error" | "warn" | "info" | "debug";

export interface Logger {
  log(level: Level, message: string, fields?: Record<string, unknown>): void;
}

const rank: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export const parseLevel = (text: string | undefined, fallback: Level = "warn"): Level =>
  text !== undefined && text.toLowerCase() in rank ? (text.toLowerCase() as Level) : fallback;

export const stderrLogger = (
  level: Level = parseLevel(process.env.DSPEX_LOG_LEVEL),
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger => ({
  log(entryLevel, message, fields) {
    if (rank[entryLevel] > rank[level]) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level: entryLevel, message, ...fields })}\n`);
  },
});

/** kafkajs levels → ours (NOTHING never logs). */
export const levelOfKafka = (level: KafkaLevel): Level | undefined => {
  switch (level) {
    case KafkaLevel.ERROR:
      return "error";
    case KafkaLevel.WARN:
      return "warn";
    case KafkaLevel.INFO:
      return "info";
    case KafkaLevel.DEBUG:
      return "debug";
    default:
      return undefined;
  }
};

/** kafkajs logs a few expected, retried conditions as errors; they are noise at error level. */
const expectedKafkaErrors = [
  "The coordinator is loading",
  "The group coordinator is not available",
  "This is not the correct coordinator",
  "another concurrent operation on the same transaction",
  "There is no leader for this topic-partition",
  "The group is rebalancing",
  "This server is not the leader for that topic-partition",
  "Topic creation errors",
  "This server does not host this topic-partition",
  // A broker away: the backend says so once (and once when it is back) instead of per retry.
  "Connection error",
  "Connection timeout",
  "Failed to connect to seed broker",
  "Crash: KafkaJS",
  "Restarting the consumer",
  "KafkaJSConnectionClosedError",
  "KafkaJSNumberOfRetriesExceeded",
  "Request Produce",
  "Closed connection",
];

export const isExpectedKafkaNoise = (entry: LogEntry): boolean => {
  const error = (entry.log as { error?: unknown }).error;
  const text = `${entry.log.message} ${typeof error === "string" ? error : ""}`;
  return expectedKafkaErrors.some((fragment) => text.includes(fragment));
};

/** Routes kafkajs logs into `logger`; expected, retried errors are demoted to debug. */
export const kafkaLogCreator =
  (logger: Logger): logCreator =>
  () =>
  (entry) => {
    const level = levelOfKafka(entry.level);
    if (!level) return;
    const { message, timestamp: _timestamp, logger: _source, ...fields } = entry.log;
    logger.log(level !== "debug" && isExpectedKafkaNoise(entry) ? "debug" : level, message, {
      source: `kafkajs.${entry.namespace || "client"}`,
      ...fields,
    });
  };
