import { join } from "node:path";
import { reflectionProgramId } from "../../processors/optimizers/reflect.ts";
import { startEvaluations } from "../../processors/optimizers/stream.ts";
import { startPipeline } from "../../processors/pipeline/pipeline.ts";
import { startRegistry } from "../../processors/registry/registry.ts";
import { registerProgram } from "../../programs/register.ts";
import type { DspexEvent } from "../../streams/events/index.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { readEvents } from "../../streams/store.ts";
import { temporaryFolder } from "../support/backends.ts";
import { labelExamples, labelProgram, labelTaskAnswer, testLmReflection } from "../support/label-task.ts";
import { type Step, startTestExecutor } from "../support/test-executor.ts";

/** The test LM in TypeScript: the label task's answers, and the reflection program's advice. */
export const labelTaskBehaviour = (step: Step) => {
  if (step.programId === reflectionProgramId) return { outputs: testLmReflection(step.inputs) };
  // The executor gets what the planner resolved: demos, instructions and temperature from the overrides.
  const overrides = {
    demos: step.demos,
    instructions: step.signature.instructions,
    temperature: step.lm.temperature,
  };
  return { outputs: { answer: labelTaskAnswer(step.inputs, overrides as never) } };
};

/** The optimization these tests request: bootstrap the label program's demos (12 train, 6 dev examples). */
export const labelBootstrap = {
  optimizer: "bootstrap" as const,
  variables: ["demos"],
  trainset: labelExamples("train", 12),
  devset: labelExamples("dev", 6),
  metric: { name: "exact_match", field: "answer", params: {} },
  budget: {},
  seed: 0,
  params: { maxBootstrappedDemos: 4, maxLabeledDemos: 4 },
};

/**
 * An embedded log with the pipeline, the evaluation and registry processors and a test executor; the
 * label program registered.
 */
export const labelSystem = async ({ latencyMs = 0 } = {}) => {
  const config = { backend: "embedded" as const, path: join(temporaryFolder("dspex-optimize-"), "log.db") };
  const log = await openLog(config);
  const pipeline = startPipeline(log);
  const evaluations = startEvaluations(log);
  const registry = startRegistry(log);
  const executor = startTestExecutor(log, { latencyMs, behave: labelTaskBehaviour });
  await Promise.all([pipeline.ready, evaluations.ready, registry.ready]);
  await registerProgram(log, labelProgram());
  return {
    log,
    config,
    async stop() {
      await executor.stop();
      await registry.stop();
      await evaluations.stop();
      await pipeline.stop();
      await log.close();
    },
  };
};

export const eventsOn = async (log: EventLog, topic: string): Promise<DspexEvent[]> =>
  (await readEvents(log, topic)).flatMap((r) => ("event" in r ? [r.event] : []));
