import { type EventOf, OptimizationRequested } from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import type { EventLog, Position } from "../../streams/log.ts";
import { appendEvents, consumeEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { createOffsetTracker } from "../workers/step-runner.ts";
import type { OptimizationResult, Progress } from "./driver.ts";
import { type LogOptimizationOptions, optimizeOnLog } from "./stream.ts";

export interface OptimizerOptions extends Omit<LogOptimizationOptions, "onProgress" | "signal"> {
  /** The consumer group (one runner of a group takes each request). */
  group?: string;
  /** Optimizations run at once (those on the same variables still take turns: leases). */
  maxConcurrent?: number;
  onProgress?(optimizationId: string, progress: Progress): void;
  onResult?(result: OptimizationResult): void;
  /** An optimization that could not run (unknown program, lease timeout...); default: logged. */
  onError?(optimizationId: string, error: Error): void;
}

export interface RunningOptimizer {
  done: Promise<void>;
  /** Stops taking requests and interrupts the optimizations in flight; they resume on the next start. */
  stop(): Promise<void>;
}

type Request = EventOf<"OptimizationRequested">;

/**
 * The optimizer as a stream consumer: each `OptimizationRequested` on the log (from `dspex optimize`, a
 * client, or the re-optimization processor) runs as `optimizeOnLog` does, trials as events, the winner
 * as `VariableChanged` when it beats the current configuration by the request's margin. A request's
 * offset is committed only once its optimization finished, so after a crash it is delivered again and
 * the optimization resumes from its events (one that already finished is not run again).
 */
export const startOptimizer = (log: EventLog, options: OptimizerOptions = {}): RunningOptimizer => {
  const group = options.group ?? "dspex-optimizer";
  const maxConcurrent = Math.max(1, options.maxConcurrent ?? 2);
  const controller = new AbortController();
  const offsets = createOffsetTracker();
  const running = new Map<string, Promise<void>>();

  const run = async (position: Position, request: Request) => {
    const id = request.data.optimizationId;
    try {
      const result = await optimizeOnLog(log, request.data, {
        ...options,
        signal: controller.signal,
        onProgress: (progress) => options.onProgress?.(id, progress),
      });
      options.onResult?.(result);
    } catch (error) {
      if (controller.signal.aborted) return; // not committed: the next start resumes it
      if (options.onError) options.onError(id, error as Error);
      else console.error(`dspex optimizer: optimization ${id} failed: ${(error as Error).message}`);
    }
    await log.commit(group, [offsets.finished(position)]);
  };

  const consumer = consumeEvents(
    log,
    { group, topics: [Topics.requests], autoCommit: false, maxBatch: 64 },
    async (batch) => {
      const passed = new Map<string, Position>();
      for (const { record, event } of batch.events) {
        offsets.started(record);
        const duplicate = event.type === "OptimizationRequested" && running.has(event.data.optimizationId);
        if (event.type !== "OptimizationRequested" || duplicate || controller.signal.aborted) {
          const at = offsets.finished(record);
          if (!controller.signal.aborted) passed.set(`${at.topic}/${at.partition}`, at);
          continue;
        }
        while (running.size >= maxConcurrent) await Promise.race(running.values());
        const id = event.data.optimizationId;
        const task = run(record, event).finally(() => running.delete(id));
        running.set(id, task);
      }
      if (passed.size > 0) await log.commit(group, [...passed.values()]);
    },
  );

  return {
    done: consumer.done,
    async stop() {
      controller.abort(new Error("optimizer stopped"));
      await consumer.stop();
      await Promise.allSettled(running.values());
    },
  };
};

/** The request event of an optimization (its id derives from the optimization's: publishing twice is harmless). */
export const optimizationRequested = (data: EventOf<"OptimizationRequested">["data"]) =>
  OptimizationRequested.create({
    id: derivedId(data.optimizationId, "requested"),
    stream: `optimization-${data.optimizationId}`,
    key: data.optimizationId,
    data: OptimizationRequested.data.parse(data),
  });

/**
 * What `dspex optimize` does: publishes the `OptimizationRequested` and runs the optimizer in this
 * process until that optimization finished (requests of the group left unfinished before run too).
 */
export const requestOptimization = (
  log: EventLog,
  data: EventOf<"OptimizationRequested">["data"],
  options: Omit<OptimizerOptions, "onProgress" | "onResult" | "onError"> & {
    onProgress?(progress: Progress): void;
  } = {},
): Promise<OptimizationResult> =>
  appendEvents(log, [optimizationRequested(data)]).then(
    () =>
      new Promise<OptimizationResult>((resolve, reject) => {
        const ours = data.optimizationId;
        const optimizer = startOptimizer(log, {
          ...options,
          onProgress: (id, progress) => id === ours && options.onProgress?.(progress),
          onResult: (result) => {
            if (result.optimizationId === ours) optimizer.stop().then(() => resolve(result), reject);
          },
          onError: (id, error) => {
            if (id === ours) optimizer.stop().then(() => reject(error), reject);
            else console.error(`dspex optimizer: optimization ${id} failed: ${error.message}`);
          },
        });
      }),
  );
