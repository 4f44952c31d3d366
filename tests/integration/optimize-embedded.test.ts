import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  demosVariable,
  labelExamples,
  labelProgram,
  labelTaskAnswer,
} from "../../processors/optimizers/label-task.ts";
import { optimizeOnLog, readRegistry, startEvaluations } from "../../processors/optimizers/stream.ts";
import { startPipeline } from "../../processors/pipeline/pipeline.ts";
import { startTestExecutor } from "../../processors/pipeline/test-executor.ts";
import { createClient } from "../../streams/client.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Pipeline, evaluation processor and a test executor that answers the label task like the test LM. */
const system = async (): Promise<EventLog> => {
  const dir = mkdtempSync(join(tmpdir(), "dspex-optimize-"));
  const log = await openLog({ backend: "embedded", path: join(dir, "log.db") });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => log.close());
  const pipeline = startPipeline(log);
  const evaluations = startEvaluations(log);
  const executor = startTestExecutor(log, {
    latencyMs: 0,
    behave: (step) => {
      // The executor gets what the planner resolved: demos, instructions and temperature from the overrides.
      const overrides = {
        demos: step.demos,
        instructions: step.signature.instructions,
        temperature: step.lm.temperature,
      };
      return { outputs: { answer: labelTaskAnswer(step.inputs, overrides as never) } };
    },
  });
  await Promise.all([pipeline.ready, evaluations.ready]);
  cleanups.push(() => executor.stop());
  cleanups.push(() => evaluations.stop());
  cleanups.push(() => pipeline.stop());
  await createClient(log).register(labelProgram());
  return log;
};

describe("optimization through the stream (embedded log, test executor)", () => {
  it("bootstraps demos, lands the winner as VariableChanged with provenance, releases the lease", async () => {
    const log = await system();
    const result = await optimizeOnLog(
      log,
      {
        optimizationId: "boot-1",
        programId: "label-qa",
        optimizer: "bootstrap",
        variables: ["demos"],
        trainset: labelExamples("train", 12),
        devset: labelExamples("dev", 6),
        metric: { name: "exact_match", field: "answer", params: {} },
        budget: {},
        seed: 1,
        params: { maxBootstrappedDemos: 4, maxLabeledDemos: 4 },
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
