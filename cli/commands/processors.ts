import { Command } from "commander";
import { describeLog, type LogOptions, openConfiguredLog } from "../../app/log.ts";
import { startProcessors, startWorkers } from "../../app/services.ts";
import type { WorkerPool } from "../../processors/workers/pool.ts";
import { Headers } from "../../streams/codec.ts";
import { Topics } from "../../streams/topics.ts";
import { positiveInteger } from "../arguments.ts";
import { withLogOptions } from "../log.ts";

const say = (text: string) => console.log(`${new Date().toISOString().slice(11, 19)} ${text}`);

/** Waits for SIGINT or SIGTERM (the clean way to stop a long-running command). */
export const untilSignal = (): Promise<NodeJS.Signals> =>
  new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      resolve(signal);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });

/**
 * Every processor a deployment needs, as a process of their own: the pipeline, evaluation, registry,
 * optimizer and re-optimizer. Run it once or several times (on several machines): instances of a
 * processor share its work, partition by partition. With `dspex workers` on Kafka this is scale-out mode.
 * Status lines say when they consume and, every few seconds while requests finish, how many did.
 */
/** Each stdio worker: busy or idle, the models it has loaded, its memory. */
const describeWorkers = (stats: ReturnType<WorkerPool["stats"]>): string =>
  stats.workers
    .map(
      (w) =>
        `${w.name} ${w.busy ? "busy" : "idle"} [${w.models.join(", ") || "no model yet"}] ${w.memoryMb} MB`,
    )
    .join(", ") + (stats.recycled > 0 ? ` (${stats.recycled} restarted past the memory limit)` : "");

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

export const processorsCommand = withLogOptions(new Command("processors"))
  .description(
    "run the pipeline, evaluation, registry, optimizer and re-optimizer until SIGINT/SIGTERM (run it on as many machines as you like)",
  )
  .option(
    "--stdio-workers <n>",
    "also run n Python workers in this process (one machine, no Kafka consumers)",
    positiveInteger,
  )
  .option(
    "--status-every <ms>",
    "how often to print the status line while requests finish",
    positiveInteger,
    5_000,
  )
  .action(async (options: LogOptions & { stdioWorkers?: number; statusEvery: number }) => {
    const { log, config } = await openConfiguredLog(options);
    const shownTrials = new Map<string, number>();
    const processors = startProcessors(
      { log, config },
      {
        hooks: {
          onTasks(processor, tasks, { taken, given }) {
            const moved = [
              ...(taken.length ? [`took ${taken.join(",")}`] : []),
              ...(given.length ? [`gave ${given.join(",")}`] : []),
            ];
            say(`${processor}: partitions ${tasks.join(",") || "none"} (${moved.join(", ")})`);
          },
          onOptimizationProgress(optimizationId, p) {
            if (shownTrials.get(optimizationId) === p.trial) return;
            shownTrials.set(optimizationId, p.trial);
            say(
              `optimization ${optimizationId}: trial ${p.trial + 1}/${p.plannedTrials} ${p.phase} ${p.score.toFixed(3)}, best dev ${p.bestScore.toFixed(3)}, ${p.calls}/${p.plannedCalls} LM calls`,
            );
          },
        },
      },
    );
    const policies = config.reoptimize.length;
    const rules = config.alerts.length;
    const workers = options.stdioWorkers
      ? startWorkers({ log, config }, { workers: options.stdioWorkers })
      : undefined;
    const finished = { completed: 0, failed: 0, rejected: 0, evaluations: 0 };
    let shown = "";
    const status = setInterval(() => {
      const line =
        `finished: ${finished.completed} completed, ${finished.failed} failed, ${finished.rejected} rejected executions; ${finished.evaluations} evaluations` +
        (workers ? `; workers: ${describeWorkers(workers.pool.stats())}` : "");
      if (line !== shown) say(line);
      shown = line;
    }, options.statusEvery);
    const results = log.tail([Topics.results], { from: "end" }).subscribe({
      next: (record) => {
        const type = record.headers[Headers.type];
        if (type === "ExecutionCompleted") finished.completed++;
        else if (type === "ExecutionFailed") finished.failed++;
        else if (type === "ExecutionRejected") finished.rejected++;
        else if (type === "EvaluationCompleted") finished.evaluations++;
      },
      // The count is only shown: the processors go on without it.
      error: (error: Error) => say(`the finished count stopped (${error.message}); the processors go on`),
    });
    try {
      const started = Date.now();
      await processors.guard(Promise.all([processors.ready(), workers?.ready()]));
      say(
        `processors ready in ${((Date.now() - started) / 1000).toFixed(1)} s on ${describeLog(config)}: ` +
          `pipeline, evaluation, registry, optimizer, re-optimizer (${plural(policies, "policy", "policies")}${policies === 0 ? ": add `reoptimize` to dspex.config.json" : ""}), ` +
          `alerts (${plural(rules, "rule", "rules")}${rules === 0 ? ": add `alerts` to dspex.config.json" : ""}), adapter selection, model failover (${plural(config.failover.length, "policy", "policies")})` +
          (workers ? `, ${options.stdioWorkers} Python stdio workers` : "; steps go to `dspex workers`"),
      );
      const signal = await processors.guard(untilSignal());
      say(`${signal}: stopping (batches in hand finish first)`);
    } finally {
      clearInterval(status);
      results.unsubscribe();
      // What went wrong while stopping is said, but never hides why the processors stopped.
      const said = (what: string) => (error: Error) => say(`${what} did not stop cleanly: ${error.message}`);
      await processors.stop().catch(said("the processors"));
      await workers?.stop().catch(said("the workers"));
      await log.close().catch(said("the log"));
    }
    say("stopped");
  });
