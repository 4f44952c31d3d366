import { caughtUp } from "../../streams/lag.ts";
import type { EventLog } from "../../streams/log.ts";

/**
 * Resolves once every group has committed every record of its topics: whatever those records make it do
 * is done, so "nothing else happened" can be checked (instead of sleeping and hoping it was long enough).
 */
export const untilCaughtUp = async (
  log: EventLog,
  groups: Readonly<Record<string, readonly string[]>>,
  timeoutMs = 60_000,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const behind: string[] = [];
    for (const [group, topics] of Object.entries(groups))
      if (!(await caughtUp(log, group, topics))) behind.push(group);
    if (behind.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(`${behind.join(", ")} did not commit their inputs within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** The pipeline's group and what it reads. */
export const pipelineInputs = {
  "dspex-pipeline": ["dspex.requests", "dspex.executions", "dspex.step-results"],
} as const;

/** Resolves with the first value `check` gives (polling); fails after `timeoutMs`, saying what it waited for. */
export const eventually = async <T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  what = "the condition",
): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};
