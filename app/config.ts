import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { z } from "zod";
import { defaultAdapterSelection } from "../processors/adaptation/adapters.ts";
import { defaultTrendRule } from "../processors/adaptation/trends.ts";
import { defaultSessionTtlMs } from "../processors/pipeline/sessions.ts";
import { describeIssues } from "../streams/events/index.ts";
import { defaultEventStoreDbUrl } from "../streams/eventstoredb/log.ts";
import { defaultKafkaBrokers, KafkaLogConfig } from "../streams/kafka/config.ts";

/**
 * When to re-optimize a program, and how: its quality (the success rate of its executions, or the mean of
 * a recorded metric) falls below `threshold` over `minExecutions`, or (`trigger: "alert"`) an alert rises
 * on that quality series → an optimization on the trainset, judged on the devset, adopted only if it
 * beats the current configuration by `margin`.
 */
export const ReoptimizePolicyConfig = z
  .object({
    programId: z.string().min(1),
    trigger: z.enum(["threshold", "alert"]).default("threshold"),
    /** Required with the threshold trigger. */
    threshold: z.number().min(0).max(1).optional(),
    minExecutions: z.number().int().positive().default(20),
    margin: z.number().min(0).default(0.05),
    /** A MetricRecorded name carrying a per-execution quality score (default: the success rate). */
    qualityMetric: z.string().min(1).optional(),
    /** Default: the program's hint (`.hint({ optimizer })`), else bootstrap. */
    optimizer: z.enum(["bootstrap", "simba", "bayes", "random"]).optional(),
    /** JSONL files of `{id?, inputs, expected}`, relative to the working directory. */
    trainset: z.string().min(1),
    devset: z.string().min(1),
    metric: z.string().min(1).default("exact_match"),
    field: z.string().min(1).optional(),
    maxTrials: z.number().int().positive().optional(),
    maxCalls: z.number().int().positive().optional(),
    seed: z.number().int().default(0),
    params: z.record(z.string(), z.json()).default({}),
  })
  .strict()
  .refine((policy) => policy.trigger === "alert" || policy.threshold !== undefined, {
    path: ["threshold"],
    message:
      'a threshold (0 to 1) is needed, or `"trigger": "alert"` to answer the alerts on the quality series',
  });
export type ReoptimizePolicyConfig = z.infer<typeof ReoptimizePolicyConfig>;

/**
 * A series of a program's metrics to watch for change (`processors/adaptation/trends.ts`): the alerts
 * processor raises AlertRaised when its recent average moves `threshold` from its baseline the bad way.
 */
export const AlertRuleConfig = z
  .object({
    programId: z.string().min(1).optional(),
    metric: z.string().min(1),
    direction: z.enum(["down", "up"]).default(defaultTrendRule.direction),
    threshold: z.number().positive(),
    relative: z.boolean().default(defaultTrendRule.relative),
    alpha: z.number().gt(0).max(1).default(defaultTrendRule.alpha),
    baselineAlpha: z.number().min(0).max(1).default(defaultTrendRule.baselineAlpha),
    warmup: z.number().int().positive().default(defaultTrendRule.warmup),
  })
  .strict();

/**
 * The kafka section is the Kafka log's own configuration (streams/kafka/config.ts: one schema, one set of
 * defaults), with the brokers always a list of host:port.
 */
const KafkaSection = KafkaLogConfig.omit({ backend: true })
  .extend({
    brokers: z
      .array(z.string().regex(/^[^:\s]+:\d+$/, "a broker is host:port"))
      .min(1)
      .default([defaultKafkaBrokers]),
  })
  .strict();

/** `dspex.config.json`: every setting has a default, so the file is optional. */
export const DspexConfig = z
  .object({
    backend: z.enum(["embedded", "kafka", "eventstoredb"]).default("embedded"),
    embedded: z
      .object({
        path: z.string().min(1).default(".dspex/log.db"),
        /**
         * Partitions of each topic the log creates: processes sharing the file share the work of a
         * processor partition by partition (1: one process does it all).
         */
        partitions: z.number().int().positive().max(64).default(1),
      })
      .strict()
      .default({ path: ".dspex/log.db", partitions: 1 }),
    kafka: KafkaSection.prefault({}),
    eventstoredb: z
      .object({ url: z.string().min(1).default(defaultEventStoreDbUrl) })
      .strict()
      .prefault({}),
    python: z
      .object({
        executable: z.string().min(1).optional(),
        workers: z.number().int().positive().max(64).default(2),
        /** Python modules whose `TOOLS` (name → function) ReAct steps may name, importable by the workers. */
        tools: z.array(z.string().regex(/^[A-Za-z_][\w.]*$/, "a dotted Python module name")).default([]),
        /** Resident memory (MB) past which a stdio worker takes no new step and is restarted once idle. */
        maxWorkerMemoryMb: z.number().int().positive().optional(),
        /** Passages the workers load (name → a JSON list or one passage per line), for Retrieve steps and `search:NAME`. */
        corpora: z
          .record(z.string().regex(/^[\w.-]+$/, "a corpus name: letters, digits, _ . -"), z.string().min(1))
          .default({}),
      })
      .strict()
      .default({ workers: 2, tools: [], corpora: {} }),
    lm: z
      .object({ model: z.string().min(1).default("dspex/offline") })
      .strict()
      .default({ model: "dspex/offline" }),
    /** Continuous re-optimization, run by `dspex processors`: one policy per program. */
    reoptimize: z.array(ReoptimizePolicyConfig).default([]),
    /**
     * When the adapter selector of `dspex processors` switches a stage's `adapter` variable: every adapter
     * ran `minSteps` steps, and the other's parse-failure rate is `failureMargin` lower (or, as reliable,
     * it is `latencyMargin` faster).
     */
    adapters: z
      .object({
        minSteps: z.number().int().positive().default(defaultAdapterSelection.minSteps),
        failureMargin: z.number().min(0).max(1).default(defaultAdapterSelection.failureMargin),
        latencyMargin: z.number().min(0).max(1).default(defaultAdapterSelection.latencyMargin),
      })
      .strict()
      .prefault({}),
    /**
     * Model failover (`dspex processors`): an alert on one of these series of a stage's model moves the
     * stage's `model` variable to the next of its choices (none by default).
     */
    failover: z
      .array(z.object({ programId: z.string().min(1).optional(), metric: z.string().min(1) }).strict())
      .default([]),
    /** Trends watched by the alerts processor of `dspex processors` (none by default). */
    alerts: z
      .array(AlertRuleConfig)
      .default([])
      .refine(
        (rules) =>
          new Set(rules.map((r) => `${r.programId ?? "*"}/${r.metric}/${r.direction}`)).size === rules.length,
        "two alert rules watch the same program, metric and direction: merge them",
      ),
    /**
     * What the Python workers record of each LM call in the step's result: `full` (the messages and the
     * completion, cut to size) or `usage` (model, tokens, latency and cost only).
     */
    trace: z
      .object({ lmCalls: z.enum(["full", "usage"]).default("full") })
      .strict()
      .prefault({}),
    /** How long a session lives without a request before the pipeline expires it (0: for ever). */
    sessions: z
      .object({ ttlMs: z.number().int().nonnegative().default(defaultSessionTtlMs) })
      .strict()
      .prefault({}),
  })
  .strict();
export type DspexConfig = z.infer<typeof DspexConfig>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Environment variables that override the file (what CI and containers set). */
const fromEnvironment = (env: NodeJS.ProcessEnv): Record<string, unknown> => {
  const overrides: Record<string, unknown> = {};
  if (env.DSPEX_BACKEND) overrides.backend = env.DSPEX_BACKEND;
  const embedded: Record<string, unknown> = {};
  if (env.DSPEX_LOG_PATH) embedded.path = env.DSPEX_LOG_PATH;
  if (env.DSPEX_PARTITIONS) embedded.partitions = Number(env.DSPEX_PARTITIONS);
  if (Object.keys(embedded).length > 0) overrides.embedded = embedded;
  const kafka: Record<string, unknown> = {};
  if (env.DSPEX_KAFKA_BROKERS) kafka.brokers = env.DSPEX_KAFKA_BROKERS.split(",").map((b) => b.trim());
  if (env.DSPEX_KAFKA_NAMESPACE !== undefined) kafka.namespace = env.DSPEX_KAFKA_NAMESPACE;
  if (Object.keys(kafka).length > 0) overrides.kafka = kafka;
  if (env.DSPEX_EVENTSTOREDB_URL) overrides.eventstoredb = { url: env.DSPEX_EVENTSTOREDB_URL };
  if (env.DSPEX_PYTHON) overrides.python = { executable: env.DSPEX_PYTHON };
  if (env.DSPEX_MODEL) overrides.lm = { model: env.DSPEX_MODEL };
  if (env.DSPEX_TRACE_LM) overrides.trace = { lmCalls: env.DSPEX_TRACE_LM };
  if (env.DSPEX_SESSION_TTL_MS) overrides.sessions = { ttlMs: Number(env.DSPEX_SESSION_TTL_MS) };
  return overrides;
};

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const merge = (base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> => {
  const result = { ...base };
  for (const [key, value] of Object.entries(over)) {
    result[key] =
      isObject(value) && isObject(base[key]) ? merge(base[key] as Record<string, unknown>, value) : value;
  }
  return result;
};

/** Reads the config file (if any), applies the environment, validates; errors say where and how to fix. */
export const loadConfig = (
  path = "dspex.config.json",
  env: NodeJS.ProcessEnv = process.env,
  explicit = false,
): DspexConfig => {
  const file = resolve(path);
  let fromFile: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      const parsed = JSON.parse(readFileSync(file, "utf8"));
      if (!isObject(parsed)) throw new Error("the file must hold a JSON object");
      fromFile = parsed;
    } catch (error) {
      throw new ConfigError(
        `${path} is not valid JSON: ${(error as Error).message}. Fix the file or remove it.`,
      );
    }
  } else if (explicit) {
    throw new ConfigError(`config file ${path} not found: check the --config path`);
  }
  const result = DspexConfig.safeParse(merge(fromFile, fromEnvironment(env)));
  if (!result.success) {
    throw new ConfigError(
      `invalid configuration (${path} and DSPEX_* variables): ${describeIssues(result.error)}. See docs/configuration.md.`,
    );
  }
  return result.data;
};
