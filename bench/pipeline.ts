import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEvaluations, streamEvaluator } from "../processors/optimizers/stream.ts";
import { startPipeline } from "../processors/pipeline/pipeline.ts";
import type { WorkerPool } from "../processors/workers/pool.ts";
import { answerEnvelope, answeredStep } from "../processors/workers/step-answer.ts";
import { startStepRunner } from "../processors/workers/step-runner.ts";
import { createClient } from "../streams/client.ts";
import {
  type EventOf,
  type Example,
  type ProgramDefinition,
  type StageDefinition,
  StepStarted,
} from "../streams/events/index.ts";
import { newId } from "../streams/ids.ts";
import { type LogConfig, openLog } from "../streams/open.ts";
import { startTestExecutor, stepResultOf } from "../tests/support/test-executor.ts";
import { median, percentile, report, type Suite } from "./report.ts";

const CHAIN = 10;
const EXECUTIONS = 300;
const KAFKA_EXECUTIONS = 40;
const WARMUP = 30;
const PARALLEL = 4;
const STAGE_MS = 100;
const SPEEDUP_ROUNDS = 5;
const EVALUATION_EXAMPLES = 1000;
const EVALUATION_ROUNDS = 5;

const dspyStage = (id: string, input: string, output: string, dependsOn: string[]): StageDefinition => ({
  id,
  runtime: "dspy",
  module: "Predict",
  signature: {
    instructions: "",
    inputs: [{ name: input, type: "str", optional: false }],
    outputs: [{ name: output, type: "str", optional: false }],
  },
  dependsOn,
  bindings: {},
  config: {},
  variables: [],
});

const programOf = (
  programId: string,
  stages: StageDefinition[],
  outputs: Record<string, string>,
): ProgramDefinition => ({
  programId,
  version: 1,
  description: "",
  inputs: [{ name: "question", type: "str", optional: false }],
  outputs,
  stages,
  variables: [],
  constraints: [],
});

/** s0 → s1 → … each feeding the next. */
const chain = (programId: string, length: number) =>
  programOf(
    programId,
    Array.from({ length }, (_, i) =>
      dspyStage(`s${i}`, i === 0 ? "question" : `x${i - 1}`, `x${i}`, i === 0 ? [] : [`s${i - 1}`]),
    ),
    { answer: `s${length - 1}.x${length - 1}` },
  );

const fanOut = (programId: string, width: number) =>
  programOf(
    programId,
    Array.from({ length: width }, (_, i) => dspyStage(`p${i}`, "question", `y${i}`, [])),
    Object.fromEntries(Array.from({ length: width }, (_, i) => [`y${i}`, `p${i}.y${i}`])),
  );

const withPipeline = async <T>(
  latencyMs: number,
  work: (client: ReturnType<typeof createClient>) => Promise<T>,
  config?: LogConfig,
) => {
  const folder = mkdtempSync(join(tmpdir(), "dspex-bench-pipeline-"));
  const log = await openLog(config ?? { backend: "embedded", path: join(folder, "log.db") });
  const pipeline = startPipeline(log);
  const executor = startTestExecutor(log, { latencyMs });
  await pipeline.ready;
  try {
    return await work(createClient(log));
  } finally {
    await executor.stop();
    await pipeline.stop();
    await log.close();
    rmSync(folder, { recursive: true, force: true });
  }
};

const timed = async (run: () => Promise<{ type: string }>) => {
  const start = process.hrtime.bigint();
  const result = await run();
  if (result.type !== "ExecutionCompleted") throw new Error(`bench execution ended with ${result.type}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
};

/** Wall time of executions, run one after another; `perStep` divides by the steps of each. */
const latencies = (
  client: ReturnType<typeof createClient>,
  programId: string,
  count: number,
  perStep: number,
) =>
  (async () => {
    const samples: number[] = [];
    for (let i = 0; i < count; i++)
      samples.push(
        (await timed(() => client.execute({ programId, inputs: { question: `q${i}` } }))) / perStep,
      );
    return samples.sort((a, b) => a - b);
  })();

/**
 * A pool answering in this process, at once: each step's StepStarted and StepCompleted come back as JSON
 * (as a worker's frame would), so the step runner checks and appends them as it does a worker's.
 */
const answeringPool = (): WorkerPool => {
  const asReceived = <T>(event: T): T => JSON.parse(JSON.stringify(event));
  return {
    async run(dispatched: EventOf<"StepDispatched">) {
      await new Promise((turn) => setImmediate(turn));
      const started = StepStarted.create({
        ...answerEnvelope(dispatched, "started"),
        data: answeredStep(dispatched, "in-process"),
      });
      const result = stepResultOf(dispatched, {}, 0);
      return { started: asReceived(started), result: asReceived(result), worker: "in-process" };
    },
  } as unknown as WorkerPool;
};

/**
 * Node's CPU per example of an evaluation through the log — the evaluation processor, the pipeline, the
 * step runner and the embedded log, as the peers suite runs them — with the Python step taken out: what
 * orchestration costs at L = 0 without the workers' noise (median of the rounds after a warm-up one).
 */
const evaluationCpuPerExample = async (): Promise<number> => {
  const folder = mkdtempSync(join(tmpdir(), "dspex-bench-pipeline-"));
  const log = await openLog({ backend: "embedded", path: join(folder, "log.db") });
  const runner = startStepRunner(log, answeringPool(), { maxInFlight: 8 });
  const pipeline = startPipeline(log);
  const evaluations = startEvaluations(log);
  try {
    await Promise.all([pipeline.ready, evaluations.ready]);
    await createClient(log).register(chain("evaluated", 1));
    const evaluator = streamEvaluator(log, { timeoutMs: 600_000 });
    const examples: Example[] = Array.from({ length: EVALUATION_EXAMPLES }, (_, i) => ({
      id: `ex-${i}`,
      inputs: { question: `question ${i}?` },
      expected: { answer: `answer ${i}` },
    }));
    const perExample: number[] = [];
    for (let round = 0; round <= EVALUATION_ROUNDS; round++) {
      const before = process.cpuUsage();
      const outcome = await evaluator.evaluate({
        evaluationId: newId(),
        programId: "evaluated",
        overrides: {},
        examples,
        metric: { name: "exact_match", field: "answer", params: {} },
        concurrency: 8,
        failureScore: 0,
      });
      const used = process.cpuUsage(before);
      if (outcome.errors > 0) throw new Error(`bench evaluation: ${outcome.errors} examples failed`);
      if (round > 0) perExample.push((used.user + used.system) / 1000 / EVALUATION_EXAMPLES);
    }
    return median(perExample);
  } finally {
    await evaluations.stop();
    await pipeline.stop();
    await runner.stop();
    await log.close();
    rmSync(folder, { recursive: true, force: true });
  }
};

export const pipelineSuite: Suite = {
  name: "pipeline",
  description:
    "orchestration overhead per step (zero-latency executor), Node CPU per evaluated example, parallel speedup (k=4 × 100 ms)",
  async run() {
    report(
      "pipeline",
      `embedded.evaluation_node_cpu_per_example (in-process pool, ${EVALUATION_EXAMPLES} examples)`,
      await evaluationCpuPerExample(),
      "ms",
    );
    await withPipeline(0, async (client) => {
      await client.register(chain("chain", CHAIN));
      await client.register(chain("single", 1));
      await latencies(client, "chain", WARMUP, CHAIN);
      const perStep = await latencies(client, "chain", EXECUTIONS, CHAIN);
      report("pipeline", `embedded.step_overhead_p50 (chain of ${CHAIN})`, percentile(perStep, 50), "ms");
      report("pipeline", `embedded.step_overhead_p99 (chain of ${CHAIN})`, percentile(perStep, 99), "ms");
      const single = await latencies(client, "single", EXECUTIONS, 1);
      report("pipeline", "embedded.execution_1_step_p50", percentile(single, 50), "ms");
      report("pipeline", "embedded.execution_1_step_p99", percentile(single, 99), "ms");
    });
    const brokers = process.env.DSPEX_KAFKA_BROKERS;
    if (!brokers)
      console.log("bench: pipeline.kafka skipped: set DSPEX_KAFKA_BROKERS (bash infra/kafka/start.sh)");
    else {
      const kafka: LogConfig = { backend: "kafka", brokers, namespace: `bench-${Date.now().toString(36)}.` };
      await withPipeline(
        0,
        async (client) => {
          await client.register(chain("chain", CHAIN));
          await latencies(client, "chain", 5, CHAIN);
          const perStep = await latencies(client, "chain", KAFKA_EXECUTIONS, CHAIN);
          report("pipeline", `kafka.step_overhead_p50 (chain of ${CHAIN})`, percentile(perStep, 50), "ms");
          report("pipeline", `kafka.step_overhead_p99 (chain of ${CHAIN})`, percentile(perStep, 99), "ms");
        },
        kafka,
      );
    }
    await withPipeline(STAGE_MS, async (client) => {
      await client.register(fanOut("parallel", PARALLEL));
      await client.register(chain("sequential", PARALLEL));
      const parallel: number[] = [];
      const sequential: number[] = [];
      for (let i = 0; i < SPEEDUP_ROUNDS; i++) {
        parallel.push(
          await timed(() => client.execute({ programId: "parallel", inputs: { question: "q" } })),
        );
        sequential.push(
          await timed(() => client.execute({ programId: "sequential", inputs: { question: "q" } })),
        );
      }
      report("pipeline", `embedded.parallel_${PARALLEL}x${STAGE_MS}ms`, median(parallel), "ms");
      report("pipeline", `embedded.sequential_${PARALLEL}x${STAGE_MS}ms`, median(sequential), "ms");
      report("pipeline", `embedded.speedup_k${PARALLEL}`, median(sequential) / median(parallel), "x");
    });
  },
};
