/**
 * The soak, short (DSPEX_SOAK_SECONDS, default 60 here): requests flow while `dspex processors` and
 * Python consumers are killed with -9 at random and the broker is down for a while (DSPEX_SOAK_OUTAGE_MS,
 * default 20 s here) and back. Nothing is lost or doubled, and the projections followed live equal a
 * rebuild. `npm run soak` is the long one (bench/soak.ts).
 */
import { describe, expect, it } from "vitest";
import { runSoak, soakOptionsFromEnvironment } from "../../bench/soak.ts";
import { findPython } from "../../processors/workers/python.ts";
import { ownBrokerSkipReason } from "../support/own-broker.ts";

const found = findPython();
const skipReason = ownBrokerSkipReason() ?? (found.python ? undefined : found.reason);
if (skipReason) console.warn(`skipping the short soak: ${skipReason}`);

describe.skipIf(skipReason !== undefined)("the soak, short", () => {
  it("processes killed -9 at random and a broker outage: nothing lost or doubled, replay = live", async () => {
    const options = {
      ...soakOptionsFromEnvironment({
        DSPEX_SOAK_SECONDS: "60",
        DSPEX_SOAK_OUTAGE_MS: "20000",
        DSPEX_SOAK_CHAOS_EVERY: "6",
        ...process.env,
      }),
      cluster: false,
    };
    const lines: string[] = [];
    const result = await runSoak(options, (line) => lines.push(line));
    console.log(
      `[soak] ${result.seconds} s: ${result.requests} requests, ${result.processorKills} processor and ${result.consumerKills} consumer kills, ${result.brokerRestarts} broker restarts; lost ${result.lost.length}, doubled ${result.duplicated.length}; longest lag ${result.maxLag}; RSS ${result.rssMb.map((r) => r.mb).join(" → ")} MB`,
    );
    expect(result.lost, [...lines, ...result.lostTraces].join("\n")).toEqual([]);
    expect(result.exitedByThemselves).toEqual([]);
    expect(result.duplicated).toEqual([]);
    expect(result.replayEqual).toBe(true);
    expect(result.brokerRestarts).toBeGreaterThanOrEqual(1);
    expect(result.processorKills + result.consumerKills).toBeGreaterThan(0);
  }, 900_000);
});
