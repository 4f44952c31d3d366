import { join } from "node:path";
import { connect, type LogOptions, type ProcessorName, startProcessors, startWorkers } from "../../index.ts";
import { temporaryFolder } from "./cleanup.ts";

/**
 * dspex in this process, through its public entry point: `log` (default: a fresh embedded log), the
 * `processors` named and `workers` Python stdio workers (0: none), all ready; `stop()` undoes it all.
 */
export const dspexHere = async (options: {
  log?: LogOptions;
  processors: readonly ProcessorName[];
  workers?: number;
}) => {
  const dspex = await connect(
    options.log ?? { backend: "embedded", log: join(temporaryFolder("dspex-here-"), "log.db") },
  );
  const processors = startProcessors(dspex, { only: options.processors });
  const workers = options.workers === 0 ? undefined : startWorkers(dspex, { workers: options.workers ?? 1 });
  const stop = async () => {
    await workers?.stop();
    await processors.stop();
    await dspex.close();
  };
  try {
    await Promise.all([processors.ready(), workers?.ready()]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { dspex, stop };
};
