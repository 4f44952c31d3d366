import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { delimiter, resolve } from "node:path";
import { adapterSelector } from "../processors/adaptation/adapters.ts";
import { alertsProcessor } from "../processors/adaptation/alerts.ts";
import { failoverProcessor } from "../processors/adaptation/failover.ts";
import { type Metric, type MetricRegistry, metricRegistry } from "../processors/evaluation/metrics.ts";
import type { Transform } from "../processors/native/index.ts";
import type { Progress } from "../processors/optimizers/driver.ts";
import type { ReoptimizationPolicy } from "../processors/optimizers/reoptimize.ts";
import { reoptimizationProcessor } from "../processors/optimizers/reoptimize.ts";
import { startOptimizer } from "../processors/optimizers/runner.ts";
import { startEvaluations } from "../processors/optimizers/stream.ts";
import { startPipeline } from "../processors/pipeline/pipeline.ts";
import { startRegistry } from "../processors/registry/registry.ts";
import { runProcessor } from "../processors/runtime/index.ts";
import { startWorkerPool } from "../processors/workers/pool.ts";
import { defaultPython } from "../processors/workers/python.ts";
import { startStepRunner } from "../processors/workers/step-runner.ts";
import type { EventLog } from "../streams/log.ts";
import { Topics } from "../streams/topics.ts";
import type { DspexConfig, ReoptimizePolicyConfig } from "./config.ts";
import { readExamples } from "./examples.ts";

/** The consumers' Python, or an error that says how to get it. */
export const pythonOf = (config: DspexConfig): string => {
  const python = defaultPython(config.python.executable);
  if (!existsSync(python)) {
    throw new Error(
      `no Python environment at ${python}: run \`bash infra/python/setup.sh --offline-model\` (npm run main does)`,
    );
  }
  return python;
};

/**
 * The Python consumers' environment: each llama.cpp gets its share of the cores (more threads only
 * thrash), the user's tool modules and corpora are named, and what LM calls record is said.
 */
export const workerEnvironment = (
  workers: number,
  env: NodeJS.ProcessEnv = process.env,
  config?: Pick<DspexConfig, "python" | "trace">,
): NodeJS.ProcessEnv => ({
  ...env,
  ...(config?.python.tools.length ? { DSPEX_TOOL_MODULES: config.python.tools.join(",") } : {}),
  ...(config && Object.keys(config.python.corpora).length > 0
    ? {
        DSPEX_CORPORA: Object.entries(config.python.corpora)
          .map(([name, file]) => `${name}=${resolve(file)}`)
          .join(delimiter),
      }
    : {}),
  ...(config ? { DSPEX_TRACE_LM: config.trace.lmCalls } : {}),
  LITELLM_LOCAL_MODEL_COST_MAP: "True",
  DSPEX_OFFLINE_THREADS:
    env.DSPEX_OFFLINE_THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / workers))),
});

/** Something running in this process that may stop on its own (a failed batch, an ended consumer). */
interface Running {
  done: Promise<void>;
  ready?: Promise<unknown>;
  stop(): Promise<void>;
}

/**
 * Watches processors: `failed` rejects as soon as one stops on its own — a failed batch, or a consumer
 * that ended — so a caller waiting for results fails with the reason instead of waiting for ever.
 */
export const watchProcessors = (processors: Record<string, Pick<Running, "done">>) => {
  let stopping = false;
  const failed = new Promise<never>((_, reject) => {
    for (const [name, processor] of Object.entries(processors)) {
      processor.done.then(
        () => {
          if (!stopping) reject(new Error(`the ${name} processor stopped unexpectedly`));
        },
        (error: Error) => {
          if (!stopping)
            reject(new Error(`the ${name} processor failed: ${error.message}`, { cause: error }));
        },
      );
    }
  });
  failed.catch(() => undefined);
  return {
    failed,
    /** `work`, unless a processor fails first. */
    guard: <T>(work: Promise<T>): Promise<T> => Promise.race([work, failed]),
    /** From now on a processor that stops is being stopped. */
    stopping: () => {
      stopping = true;
    },
  };
};

/** Every processor a deployment runs, by the consumer group its instances share. */
export const processorGroups = {
  pipeline: "dspex-pipeline",
  evaluation: "dspex-evaluation",
  registry: "dspex-registry",
  optimizer: "dspex-optimizer",
  reoptimizer: "dspex-reoptimizer",
  alerts: "dspex-alerts",
  adapters: "dspex-adapters",
  failover: "dspex-failover",
} as const;
export type ProcessorName = keyof typeof processorGroups;
export const allProcessors = Object.keys(processorGroups) as ProcessorName[];

/** The consumer groups of the Python workers: stdio pools (this runtime) and Kafka consumers. */
export const workerGroups = ["dspex-python-stdio", "dspex-consumers"] as const;

/** What each group of a deployment reads. */
export const groupInputs: Readonly<Record<string, readonly string[]>> = {
  [processorGroups.pipeline]: [Topics.requests, Topics.executions, Topics.stepResults],
  [processorGroups.evaluation]: [Topics.requests, Topics.results],
  [processorGroups.registry]: [Topics.variables],
  [processorGroups.optimizer]: [Topics.requests],
  [processorGroups.reoptimizer]: [Topics.metrics],
  [processorGroups.alerts]: [Topics.metrics],
  [processorGroups.adapters]: [Topics.metrics],
  [processorGroups.failover]: [Topics.metrics],
  ...Object.fromEntries(workerGroups.map((group) => [group, [Topics.steps]])),
};

/** The re-optimization policies of the config, with their datasets read. */
export const reoptimizationPolicies = (config: DspexConfig): ReoptimizationPolicy[] =>
  config.reoptimize.map((policy: ReoptimizePolicyConfig) => ({
    programId: policy.programId,
    trigger: policy.trigger,
    threshold: policy.threshold ?? 0,
    minExecutions: policy.minExecutions,
    margin: policy.margin,
    metric: policy.qualityMetric,
    request: {
      optimizer: policy.optimizer,
      variables: [],
      trainset: readExamples(policy.trainset),
      devset: readExamples(policy.devset),
      metric: { name: policy.metric, field: policy.field, params: {} },
      budget: { maxTrials: policy.maxTrials, maxCalls: policy.maxCalls },
      seed: policy.seed,
      params: policy.params,
    },
  }));

export interface ProcessorHooks {
  /** Progress of each optimization this process's optimizer runs. */
  onOptimizationProgress?(optimizationId: string, progress: Progress): void;
  /** The tasks (partitions) a processor of this process holds after each change. */
  onTasks?(
    processor: ProcessorName,
    tasks: readonly number[],
    change: { taken: readonly number[]; given: readonly number[] },
  ): void;
}

type TasksArgs = [tasks: readonly number[], change: { taken: readonly number[]; given: readonly number[] }];

const startOne = (
  log: EventLog,
  config: DspexConfig,
  name: ProcessorName,
  hooks: ProcessorHooks,
  own: { metrics: MetricRegistry; transforms: Readonly<Record<string, Transform>> },
): Running => {
  const runtime = { onTasks: hooks.onTasks && ((...args: TasksArgs) => hooks.onTasks!(name, ...args)) };
  switch (name) {
    case "pipeline":
      return startPipeline(log, { transforms: own.transforms, sessionTtlMs: config.sessions.ttlMs }, runtime);
    case "evaluation":
      return startEvaluations(log, own.metrics, runtime);
    case "registry":
      return startRegistry(log, runtime);
    case "optimizer":
      return startOptimizer(log, {
        concurrency: config.python.workers * 2,
        onProgress: hooks.onOptimizationProgress,
        ...runtime,
      });
    case "reoptimizer":
      return runProcessor(log, reoptimizationProcessor(reoptimizationPolicies(config)), runtime);
    case "alerts":
      return runProcessor(log, alertsProcessor(config.alerts), runtime);
    case "adapters":
      return runProcessor(log, adapterSelector(config.adapters), runtime);
    case "failover":
      return runProcessor(log, failoverProcessor(config.failover), runtime);
  }
};

/** A log opened with the configuration it was opened from: where processors and workers run. */
export interface ConfiguredLog {
  log: EventLog;
  config: DspexConfig;
}

/**
 * Starts processors of the log in this process (all of them unless `only` names some). Several processes
 * may run them: they share the work by partition.
 */
export const startProcessors = (
  { log, config }: ConfiguredLog,
  options: {
    only?: readonly ProcessorName[];
    hooks?: ProcessorHooks;
    /**
     * Metrics and native transforms of your own, by name, next to the built-in ones: programs and
     * evaluations name them (`metric: { name }`, `native.transform(..., { fn })`). Every process that runs
     * the evaluation (metrics) or the pipeline (transforms) must be started with them.
     */
    metrics?: Readonly<Record<string, Metric>>;
    transforms?: Readonly<Record<string, Transform>>;
  } = {},
) => {
  const which = options.only ?? allProcessors;
  const own = { metrics: metricRegistry(options.metrics), transforms: options.transforms ?? {} };
  const all = Object.fromEntries(
    which.map((name) => [name, startOne(log, config, name, options.hooks ?? {}, own)]),
  ) as Partial<Record<ProcessorName, Running>>;
  const watch = watchProcessors(all as Record<string, Running>);
  return {
    names: which,
    /** Rejects when one stops on its own. */
    failed: watch.failed,
    /** `work`, unless a processor fails first. */
    guard: watch.guard,
    /** Resolves when all consume (their state rebuilt from the log). */
    ready: () => watch.guard(Promise.all(Object.values(all).map((processor) => processor.ready))),
    async stop() {
      watch.stopping();
      for (const processor of Object.values(all)) await processor.stop();
    },
  };
};

export type RunningProcessors = ReturnType<typeof startProcessors>;

/**
 * Starts a pool of Python stdio workers taking the log's steps (`workers`: the config's `python.workers`
 * by default). On Kafka, `dspex workers` runs Kafka consumers instead, on any machine.
 */
export const startWorkers = ({ log, config }: ConfiguredLog, options: { workers?: number } = {}) => {
  const workers = options.workers ?? config.python.workers;
  const env = workerEnvironment(workers, process.env, config);
  const pool = startWorkerPool({
    python: pythonOf(config),
    workers,
    env,
    maxWorkerMemoryMb: config.python.maxWorkerMemoryMb,
  });
  const runner = startStepRunner(log, pool, { maxInFlight: workers * 2 });
  return {
    pool,
    ready: (timeoutMs = 300_000) => pool.ready(timeoutMs),
    async stop() {
      await runner.stop();
      await pool.close();
    },
  };
};

export type RunningWorkers = ReturnType<typeof startWorkers>;

/** How many live members each group has (undefined where the backend cannot tell). */
export const liveMembersOf = async (log: EventLog, groups: readonly string[]) =>
  new Map(await Promise.all(groups.map(async (group) => [group, await log.liveMembers(group)] as const)));

export interface DeploymentNeeds {
  processors: readonly ProcessorName[];
  /** Whether Python workers must take the steps (the program has DSPy stages). */
  workers: boolean;
}

/**
 * What a command needs on the log: used where it already runs (members of its group are alive), started
 * in this process where it does not. `local: true` starts all of it here; `local: false` starts nothing
 * and fails, naming what is missing, when the log can tell that something does not run.
 */
export const useDeployment = async (
  log: EventLog,
  config: DspexConfig,
  needs: DeploymentNeeds,
  options: { local?: boolean; workers?: number } = {},
) => {
  const groups = [...needs.processors.map((name) => processorGroups[name]), ...workerGroups];
  const live =
    options.local === true ? new Map<string, number | undefined>() : await liveMembersOf(log, groups);
  const running = (group: string) => (live.get(group) ?? 0) > 0;
  const workersRun = workerGroups.some(running);
  const missing = needs.processors.filter((name) => !running(processorGroups[name]));
  const workersMissing = needs.workers && !workersRun;
  if (options.local === false) {
    const absent = [
      ...missing.filter((name) => live.get(processorGroups[name]) === 0),
      ...(workersMissing && workerGroups.every((g) => live.get(g) === 0) ? ["Python workers"] : []),
    ];
    if (absent.length > 0)
      throw new Error(
        `nothing runs ${absent.join(", ")} on this log: start \`dspex processors\`${workersMissing ? " and `dspex workers`" : ""}, or drop --no-local`,
      );
    return {
      used: needs.processors,
      started: [] as string[],
      guard: <T>(work: Promise<T>) => work,
      stop: async () => {},
    };
  }
  const processors = missing.length > 0 ? startProcessors({ log, config }, { only: missing }) : undefined;
  const workers = workersMissing ? startWorkers({ log, config }, { workers: options.workers }) : undefined;
  await (processors?.guard ?? (<T>(work: Promise<T>) => work))(
    Promise.all([processors?.ready(), workers?.ready()]),
  );
  return {
    /** What was already running on the log. */
    used: needs.processors.filter((name) => !missing.includes(name)),
    /** What this process started because nothing ran it. */
    started: [
      ...missing,
      ...(workers ? [`${options.workers ?? config.python.workers} Python workers`] : []),
    ] as string[],
    guard: <T>(work: Promise<T>) => (processors ? processors.guard(work) : work),
    async stop() {
      await processors?.stop();
      await workers?.stop();
    },
  };
};
