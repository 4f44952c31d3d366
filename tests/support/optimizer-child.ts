/**
 * One optimization in a process of its own, for tests that kill its holder with -9.
 *
 *   node --import tsx tests/support/optimizer-child.ts '<LogConfig JSON>' '<OptimizationRequested data JSON>' <leaseTtlMs>
 *
 * Prints "optimizing" once it holds its leases and its first trial was evaluated, "done" when it finished.
 */
import { optimizeOnLog } from "../../processors/optimizers/stream.ts";
import type { EventOf } from "../../streams/events/index.ts";
import { type LogConfig, openLog } from "../../streams/open.ts";

const [configJson, requestJson, ttl] = process.argv.slice(2);
const log = await openLog(JSON.parse(configJson!) as LogConfig);
let said = false;
await optimizeOnLog(log, JSON.parse(requestJson!) as EventOf<"OptimizationRequested">["data"], {
  leaseTtlMs: Number(ttl),
  onProgress: () => {
    if (said) return;
    said = true;
    process.stdout.write("optimizing\n");
  },
});
process.stdout.write("done\n");
await log.close();
