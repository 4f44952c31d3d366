/**
 * A slow step consumer for load tests: takes a batch of StepDispatched commands, works on them for
 * `batchMs`, and commits their StepCompleted results with the batch's offsets. Steps it has not taken
 * wait on the log (backpressure), not in its memory — unlike the test executor's timers.
 */

import type { EventLog } from "../../streams/log.ts";
import { consumeEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { stepResultOf } from "./test-executor.ts";

export interface SlowStepsOptions {
  group?: string;
  /** Steps per batch. */
  maxBatch: number;
  /** Time each batch takes. */
  batchMs: number;
}

export const startSlowSteps = (log: EventLog, options: SlowStepsOptions) => {
  let answered = 0;
  const consumer = consumeEvents(
    log,
    { group: options.group ?? "dspex-slow-steps", topics: [Topics.steps], maxBatch: options.maxBatch },
    async (batch) => {
      await new Promise((r) => setTimeout(r, options.batchMs));
      const results = batch.events.flatMap(({ event }) =>
        event.type === "StepDispatched" ? [stepResultOf(event, {}, options.batchMs)] : [],
      );
      await batch.commitWith(results);
      answered += results.length;
    },
  );
  return {
    /** Steps answered so far. */
    answered: () => answered,
    done: consumer.done,
    stop: () => consumer.stop(),
  };
};
