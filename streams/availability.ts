/**
 * Says once that the log cannot be reached and once that it is back, however many retries lie between:
 * one line per change of state, not per retry.
 */
export const availability = (
  what: string,
  say: (message: string) => void,
  clock: () => number = Date.now,
) => {
  let downSince: number | undefined;
  return {
    down(reason: string): void {
      if (downSince !== undefined) return;
      downSince = clock();
      say(`${what} cannot be reached (${reason}); retrying until it is back`);
    },
    up(): void {
      if (downSince === undefined) return;
      say(`${what} is back after ${((clock() - downSince) / 1000).toFixed(1)} s`);
      downSince = undefined;
    },
    get isDown(): boolean {
      return downSince !== undefined;
    },
  };
};
export type Availability = ReturnType<typeof availability>;

/** Waits `ms`, or less if `signal` aborts first. */
export const pause = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/**
 * Runs `work` until it succeeds, waiting longer after each failure the log reports as passing (up to
 * `maxWaitMs`); any other error, or an abort, ends the retries with that error.
 */
export const untilAvailable = async <T>(
  work: () => Promise<T>,
  isPassing: (error: unknown) => boolean,
  options: { signal?: AbortSignal; maxWaitMs?: number } = {},
): Promise<T> => {
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isPassing(error) || options.signal?.aborted) throw error;
      await pause(Math.min(100 * 2 ** attempt, options.maxWaitMs ?? 5_000), options.signal);
    }
  }
};
