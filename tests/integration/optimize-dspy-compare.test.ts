import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { streamReflector } from "../../processors/optimizers/reflect.ts";
import { setupOf } from "../../processors/optimizers/setup.ts";
import { optimizeOnLog, startEvaluations } from "../../processors/optimizers/stream.ts";
import { startPipeline } from "../../processors/pipeline/pipeline.ts";
import { startRegistry } from "../../processors/registry/registry.ts";
import { startWorkerPool } from "../../processors/workers/pool.ts";
import { findPython } from "../../processors/workers/python.ts";
import { startStepRunner } from "../../processors/workers/step-runner.ts";
import { registerProgram } from "../../programs/register.ts";
import type { EventOf } from "../../streams/events/index.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { temporaryFolder } from "../support/backends.ts";
import { bootstrapTask, runDspyBootstrap } from "../support/dspy-reference.ts";
import {
  demosVariable,
  labelExamples,
  labelProgram,
  labelTaskRules,
  testLmAdvice,
} from "../support/label-task.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the DSPy comparison: ${found.reason}`);

/** The label task as both sides run it: 24 training and 12 dev examples, DSPy's BootstrapFewShot parameters. */
const request: EventOf<"OptimizationRequested">["data"] = {
  optimizationId: "compare-bootstrap",
  programId: "label-qa",
  optimizer: "bootstrap",
  variables: ["demos"],
  trainset: labelExamples("train", 24),
  devset: labelExamples("dev", 12),
  metric: { name: "exact_match", field: "answer", params: {} },
  budget: {},
  seed: 0,
  params: { maxBootstrappedDemos: 4, maxLabeledDemos: 4, maxRounds: 1 },
};

describe.skipIf(!found.python)(
  "dspex's BootstrapFewShot against DSPy's, on the label task with the same test LM (Python workers)",
  () => {
    let log: EventLog;
    let stop: () => Promise<void>;

    beforeAll(async () => {
      const folder = temporaryFolder("dspex-compare-");
      const rules = join(folder, "rules.json");
      writeFileSync(rules, JSON.stringify(labelTaskRules()));
      log = await openLog({ backend: "embedded", path: join(folder, "log.db") });
      const pool = startWorkerPool({ python: found.python!, workers: 2, args: ["--test-answers", rules] });
      const runner = startStepRunner(log, pool);
      const pipeline = startPipeline(log);
      const evaluations = startEvaluations(log);
      const registry = startRegistry(log);
      await Promise.all([pool.ready(180_000), pipeline.ready, evaluations.ready, registry.ready]);
      await registerProgram(log, labelProgram());
      stop = async () => {
        await registry.stop();
        await evaluations.stop();
        await pipeline.stop();
        await runner.stop();
        await pool.close();
        await log.close();
      };
    }, 240_000);
    afterAll(() => stop?.());

    it("reaches the same or a better dev score with no more LM calls (here: the very same demos)", async () => {
      const program = labelProgram();
      const reference = runDspyBootstrap(
        found.python!,
        bootstrapTask(setupOf(request, program), program, labelTaskRules()),
      );
      const dspex = await optimizeOnLog(log, request, { evaluationTimeoutMs: 120_000 });
      const dspy = await reference;
      expect(dspy.baselineScore).toBe(0);
      expect(dspex.baselineScore).toBe(dspy.baselineScore);
      expect(dspex.candidateScore).toBeGreaterThanOrEqual(dspy.devScore);
      expect(dspex.candidateScore).toBeGreaterThan(dspex.baselineScore);
      // dspex counts the baseline and the winner on the devset too, as the script does for DSPy.
      expect(dspex.calls).toBeLessThanOrEqual(dspy.calls.total);
      const search = dspex.calls - 2 * request.devset.length;
      expect(search).toBeLessThanOrEqual(dspy.calls.compile);
      expect(dspex.bestConfig[demosVariable]).toEqual(dspy.demos);
      console.log(
        `bootstrap on the label task: dspex dev ${dspex.candidateScore.toFixed(3)} with ${dspex.calls} calls; ` +
          `DSPy ${dspy.dspyVersion} dev ${dspy.devScore.toFixed(3)} with ${dspy.calls.total} calls`,
      );
    }, 240_000);

    it("runs SIMBA's reflection as a step on the Python workers, with the test LM's deterministic rule", async () => {
      const reflection = {
        programId: "label-qa",
        modules: { answer: "Answer with the code of the label." },
        inputs: { label: "cedar", question: "What is the code of cedar #2?" },
        expected: { answer: "CE-134" },
        better: { outputs: { answer: "CE-134" }, score: 1 },
        worse: { outputs: { answer: "not CE-134 (1a2b)" }, score: 0 },
        reflectionId: "compare-reflection-1",
      };
      const answer = await streamReflector(log, {
        model: "dspex/test?mode=demo_gated",
        timeoutMs: 120_000,
      }).reflect(reflection);
      expect(answer.calls).toBe(1);
      expect(answer.advice).toEqual(testLmAdvice(reflection));
      expect(answer.advice).toEqual({ answer: "When label is cedar, answer CE-134." });
    }, 120_000);
  },
);
