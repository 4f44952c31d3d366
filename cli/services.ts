import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { startEvaluations } from "../processors/optimizers/stream.ts";
import { startPipeline } from "../processors/pipeline/pipeline.ts";
import { startRegistry } from "../processors/registry/registry.ts";
import type { RunningProcessor } from "../processors/runtime.ts";
import { startWorkerPool } from "../processors/workers/pool.ts";
import { defaultPython } from "../processors/workers/python.ts";
import { startStepRunner } from "../processors/workers/step-runner.ts";
import type { EventLog } from "../streams/log.ts";
import type { DspexConfig } from "./config.ts";

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

/** The Python consumers' environment: each llama.cpp gets its share of the cores (more threads only thrash). */
export const workerEnvironment = (
  workers: number,
  env: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv => ({
  ...env,
  LITELLM_LOCAL_MODEL_COST_MAP: "True",
  DSPEX_OFFLINE_THREADS:
    env.DSPEX_OFFLINE_THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / workers))),
});

/**
 * Watches processors: `failed` rejects as soon as one stops on its own — a failed batch, or a consumer
 * that ended — so a caller waiting for results fails with the reason instead of waiting for ever.
 */
export const watchProcessors = (processors: Record<string, Pick<RunningProcessor<unknown>, "done">>) => {
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

/** The pipeline, evaluation and registry processors of one log, run in this process. */
export const startProcessors = (log: EventLog) => {
  const pipeline = startPipeline(log);
  const evaluations = startEvaluations(log);
  const registry = startRegistry(log);
  const all = { pipeline, evaluations, registry };
  const watch = watchProcessors(all);
  return {
    ...all,
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

/** A pool of Python stdio workers taking the log's steps (one machine, no Kafka consumers needed). */
export const startLocalWorkers = (log: EventLog, config: DspexConfig, workers = config.python.workers) => {
  const pool = startWorkerPool({ python: pythonOf(config), workers, env: workerEnvironment(workers) });
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
