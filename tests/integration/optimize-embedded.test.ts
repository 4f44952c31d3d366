import { afterEach, describe, expect, it } from "vitest";
import { optimizeOnLog, readRegistry } from "../../processors/optimizers/stream.ts";
import type { EventLog } from "../../streams/log.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { demosVariable } from "../support/label-task.ts";
import { labelBootstrap, labelSystem } from "./optimize-support.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Pipeline, evaluation processor and a test executor that answers the label task like the test LM. */
const system = async (): Promise<EventLog> => {
  const s = await labelSystem();
  cleanups.push(s.stop);
  return s.log;
};

describe("optimization through the stream (embedded log, test executor)", () => {
  it("bootstraps demos, lands the winner as VariableChanged with provenance, releases the lease", async () => {
    const log = await system();
    const result = await optimizeOnLog(
      log,
      {
        optimizationId: "boot-1",
        programId: "label-qa",
        ...labelBootstrap,
        seed: 1,
      },
      { evaluationTimeoutMs: 60_000 },
    );
    expect(result.baselineScore).toBe(0);
    expect(result.bestScore).toBeGreaterThan(0);
    expect(result.accepted).toBe(true);
    const { variables } = await readRegistry(log);
    const demos = variables.get(demosVariable)!;
    expect(demos.value).toEqual(result.bestConfig[demosVariable]);
    expect(demos.lease).toBeNull();
    const changed = (await readEvents(log, Topics.variables)).flatMap((r) =>
      "event" in r && r.event.type === "VariableChanged" ? [r.event] : [],
    );
    expect(changed.at(-1)?.data.provenance).toEqual({
      optimizationId: "boot-1",
      scoreBefore: result.baselineScore,
      scoreAfter: result.bestScore,
    });
    const trials = (await readEvents(log, Topics.optimizations)).filter(
      (r) => "event" in r && r.event.type === "TrialEvaluated",
    );
    expect(trials.length).toBe(result.trials);
  }, 120_000);
});
