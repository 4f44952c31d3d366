/**
 * Leases that cannot leak: two optimizations on one variable — the second waits in line, gives up, and
 * its place is given back; the first finishes and gives its lease back; a third gets it at once. And an
 * optimization killed with -9 while it holds the lease: it stops renewing, the registry expires the lease
 * (saying why), and the next optimization gets the variable.
 */
import { afterEach, describe, expect, it } from "vitest";
import { optimizeOnLog, readRegistry } from "../../processors/optimizers/stream.ts";
import type { EventOf } from "../../streams/events/index.ts";
import { demosVariable } from "../support/label-task.ts";
import { killHard, spawnTs } from "../support/processes.ts";
import { eventually } from "../support/waits.ts";
import { eventsOn, labelBootstrap, labelSystem } from "./optimize-support.ts";

const childScript = new URL("../support/optimizer-child.ts", import.meta.url).pathname;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const request = (optimizationId: string): EventOf<"OptimizationRequested">["data"] => ({
  optimizationId,
  programId: "label-qa",
  ...labelBootstrap,
});

describe("leases that cannot leak (embedded log, registry processor, test executor)", () => {
  it("a waiting optimization that gives up leaves the line; the holder's release lets the next one in", async () => {
    const s = await labelSystem({ latencyMs: 150 });
    cleanups.push(s.stop);
    const first = optimizeOnLog(s.log, request("first"), { evaluationTimeoutMs: 60_000 });
    await eventually(async () =>
      (await readRegistry(s.log)).variables.get(demosVariable)?.lease?.leaseId === "optimization-first"
        ? true
        : undefined,
    );
    await expect(
      optimizeOnLog(s.log, request("second"), { leaseTimeoutMs: 1_000, evaluationTimeoutMs: 60_000 }),
    ).rejects.toThrow(/gave up waiting 1000 ms for its leases; another optimization holds its variables/);
    // Its place in line was given back while the first still holds the lease.
    const during = (await readRegistry(s.log)).variables.get(demosVariable)!;
    expect(during.lease?.leaseId).toBe("optimization-first");
    expect(during.queue).toEqual([]);

    await first;
    const third = await optimizeOnLog(s.log, request("third"), { leaseTimeoutMs: 5_000 });
    expect(third.trials).toBeGreaterThan(0);
    const grants = (await eventsOn(s.log, "dspex.variables")).flatMap((e) =>
      e.type === "VariableLeaseGranted" ? [e.data.leaseId] : [],
    );
    expect(grants).toEqual(["optimization-first", "optimization-third"]);
    expect((await readRegistry(s.log)).variables.get(demosVariable)?.lease).toBeNull();
  }, 120_000);

  it("the holder killed with -9: its lease expires, with the reason, and the next optimization gets it", async () => {
    const s = await labelSystem({ latencyMs: 300 });
    cleanups.push(s.stop);
    const holder = spawnTs(childScript, [
      JSON.stringify(s.config),
      JSON.stringify(request("doomed")),
      "2000",
    ]);
    cleanups.push(() => killHard(holder.child));
    await holder.waitFor((lines) => lines.includes("optimizing"), 60_000);
    await killHard(holder.child);

    const next = optimizeOnLog(s.log, request("after"), { leaseTimeoutMs: 30_000 });
    const released = await eventually(async () =>
      (await eventsOn(s.log, "dspex.variables")).find(
        (e): e is EventOf<"VariableLeaseReleased"> =>
          e.type === "VariableLeaseReleased" && e.data.leaseId === "optimization-doomed",
      ),
    );
    expect(released.data.reason).toMatch(/^expired: optimizer:doomed did not renew it within 2000 ms/);
    expect((await next).trials).toBeGreaterThan(0);
  }, 120_000);
});
