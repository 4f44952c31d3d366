/**
 * `npm run bench -- peers`: dspex against plain DSPy on the same program and the same examples.
 *
 * (a) DSPy: `dspy.Evaluate(num_threads=N)` of `dspy.Predict("question -> answer")` in one Python process
 *     (python-consumers/dspex_tools/bench/peers.py, kept up between rounds so DSPy imports once);
 * (b) dspex: the same program registered on the embedded log and evaluated through the log — pipeline,
 *     evaluation processor, step runner and N Python stdio workers, as the main job runs them
 *     (evaluation concurrency and step runner in-flight 2N, like `dspex demo`);
 * (c) dspex with 2N workers (scale-out beyond one process);
 * (d) at L = 0 only, DSPy again with the two faster DSPy helpers the dspex workers install
 *     (executor/dspy_speedups.py): against it, dspex's wall is what orchestration alone costs.
 * Both sides use the test LM `dspex/test?latency_ms=L` with the same rules file, for L = 0 and L = 200.
 * Rounds interleave a, b, c, a, b, c, ...; the figures are medians with their spread (max - min over the
 * median) and the ratios are the medians of the per-round ratios. Startup is never timed (DSPy's import,
 * the workers' start), nor one warm-up round at L = 0 on every side: only the evaluations after it. Both
 * sides must score the same and give the same answers.
 *
 * At L = 0 it also says where dspex's time goes: CPU per example of the Node process (orchestration:
 * pipeline, evaluation, log, step runner, frames) and of the Python workers, the Python step time
 * (`execute_step`, StepCompleted.latencyMs), and from sequential executions the latency split into
 * orchestration, IPC (pool round trip minus the step) and the step.
 *
 * Env: DSPEX_BENCH_PEERS_EXAMPLES (500), DSPEX_BENCH_PEERS_N (4), DSPEX_BENCH_PEERS_ROUNDS (3),
 * DSPEX_BENCH_PEERS_LATENCIES ("0,200").
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { startEvaluations, streamEvaluator } from "../processors/optimizers/stream.ts";
import { startPipeline } from "../processors/pipeline/pipeline.ts";
import { startWorkerPool, type WorkerPool } from "../processors/workers/pool.ts";
import { findPython } from "../processors/workers/python.ts";
import { startStepRunner } from "../processors/workers/step-runner.ts";
import { dspy, program, v } from "../programs/index.ts";
import { registerProgram } from "../programs/register.ts";
import { createClient } from "../streams/client.ts";
import type { Example } from "../streams/events/index.ts";
import { newId } from "../streams/ids.ts";
import { openLog } from "../streams/open.ts";
import { withPythonTools } from "../tests/support/python-tools.ts";
import { median, report, type Suite, spread } from "./report.ts";

const root = new URL("..", import.meta.url).pathname;
const envNumber = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
};
const EXAMPLES = envNumber("DSPEX_BENCH_PEERS_EXAMPLES", 500);
const N = envNumber("DSPEX_BENCH_PEERS_N", 4);
const ROUNDS = envNumber("DSPEX_BENCH_PEERS_ROUNDS", 3);
const LATENCIES = (process.env.DSPEX_BENCH_PEERS_LATENCIES ?? "0,200").split(",").map(Number);
const SEQUENTIAL = Math.min(100, EXAMPLES);
const INSTRUCTIONS = "Answer the question."; // the same as peers.py
const CLOCK_TICKS = 100; // /proc/<pid>/stat counts CPU time in USER_HZ, 100 on Linux

/** Examples and the test LM's rules: 4 of 5 questions have a rule (score 0.8), the rest get a hash answer. */
export const peerDataset = (count: number) => {
  const examples: Example[] = [];
  /** The test LM's shorthand rule format: `{"text in the prompt": {field: answer}}`. */
  const rules: Record<string, { answer: string }> = {};
  for (let i = 0; i < count; i++) {
    const item = i.toString().padStart(4, "0");
    const answer = `code ${((i * 7919) % 10007).toString().padStart(5, "0")}`;
    examples.push({
      id: `ex-${item}`,
      inputs: { question: `Which code word belongs to item ${item}?` },
      expected: { answer },
    });
    if (i % 5 !== 4) rules[`item ${item}?`] = { answer };
  }
  return { examples, rules };
};

const programId = (latencyMs: number) => `peers-qa-${latencyMs}ms`;

const peerProgram = (latencyMs: number) =>
  program(programId(latencyMs))
    .description("the peer benchmark's program: one Predict, the same as plain DSPy's")
    .input("question: str")
    .variable("model", v.model([`dspex/test?latency_ms=${latencyMs}`]))
    .stage("qa", dspy.predict(`"${INSTRUCTIONS}" question -> answer`))
    .output("answer", "qa.answer")
    .build();

interface RoundResult {
  wallS: number;
  score: number;
  calls: number;
  answers: Record<string, unknown>;
}

/** CPU seconds (user + system) of a process, from /proc; undefined where there is no /proc. */
const cpuOfPid = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
};

const nodeCpu = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

/** Per step: the pool's round trip (queue wait included) and the Python step (`execute_step`). */
interface StepSample {
  roundTripMs: number;
  stepMs: number;
}

/** The pool, with each step's round trip and Python time recorded. */
const instrumented = (pool: WorkerPool, samples: StepSample[]): WorkerPool => ({
  ...pool,
  async run(dispatched) {
    const start = process.hrtime.bigint();
    const run = await pool.run(dispatched);
    const roundTripMs = Number(process.hrtime.bigint() - start) / 1e6;
    const stepMs = Number((run.result.data as { latencyMs?: number }).latencyMs ?? 0);
    samples.push({ roundTripMs, stepMs });
    return run;
  },
});

/** dspex as the main job runs it, on its own embedded log, with `workers` Python stdio workers. */
const startDspex = async (python: string, workers: number, rulesPath: string) => {
  const folder = mkdtempSync(join(tmpdir(), "dspex-bench-peers-"));
  const log = await openLog({ backend: "embedded", path: join(folder, "log.db") });
  const pool = startWorkerPool({
    python,
    workers,
    queueLimit: 10_000,
    startupTimeoutMs: 600_000, // the bench machine is shared: DSPy's import can take minutes
    args: ["--test-answers", rulesPath, "--log-level", "WARNING"],
    env: { ...process.env, LITELLM_LOCAL_MODEL_COST_MAP: "True" },
    cwd: root,
  });
  const samples: StepSample[] = [];
  const runner = startStepRunner(log, instrumented(pool, samples), { maxInFlight: workers * 2 });
  const pipeline = startPipeline(log);
  const evaluations = startEvaluations(log);
  const stop = async () => {
    await evaluations.stop();
    await pipeline.stop();
    await runner.stop();
    await pool.close();
    await log.close();
    rmSync(folder, { recursive: true, force: true });
  };
  try {
    await Promise.all([pool.ready(900_000), pipeline.ready, evaluations.ready]);
    for (const latency of LATENCIES) await registerProgram(log, peerProgram(latency));
  } catch (error) {
    await stop();
    throw error;
  }
  const evaluator = streamEvaluator(log, { timeoutMs: 900_000 });
  const pids = () => pool.stats().workers.map((w) => w.pid);
  const pythonCpu = () => pids().reduce<number>((sum, pid) => sum + (cpuOfPid(pid) ?? Number.NaN), 0);

  const evaluate = async (latencyMs: number, examples: readonly Example[]) => {
    samples.length = 0;
    const cpu = { node: nodeCpu(), python: pythonCpu() };
    const start = process.hrtime.bigint();
    const outcome = await evaluator.evaluate({
      evaluationId: newId(),
      programId: programId(latencyMs),
      overrides: {},
      examples,
      metric: { name: "exact_match", field: "answer", params: {} },
      concurrency: workers * 2,
      failureScore: 0,
    });
    const wallS = Number(process.hrtime.bigint() - start) / 1e9;
    if (outcome.errors > 0)
      throw new Error(
        `dspex: ${outcome.errors} examples failed, e.g. ${outcome.results.find((r) => r.error)?.error}`,
      );
    return {
      wallS,
      score: outcome.score,
      calls: outcome.usage.calls,
      answers: Object.fromEntries(outcome.results.map((r) => [r.exampleId, r.outputs?.answer])),
      nodeCpuS: nodeCpu() - cpu.node,
      pythonCpuS: pythonCpu() - cpu.python,
      steps: [...samples],
    };
  };

  /** Executions one after another (no queueing): latency = orchestration + pool round trip. */
  const sequential = async (latencyMs: number, examples: readonly Example[]) => {
    const client = createClient(log);
    const rows: { totalMs: number; roundTripMs: number; stepMs: number }[] = [];
    for (const example of examples) {
      samples.length = 0;
      const start = process.hrtime.bigint();
      const result = await client.execute({ programId: programId(latencyMs), inputs: example.inputs });
      const totalMs = Number(process.hrtime.bigint() - start) / 1e6;
      if (result.type !== "ExecutionCompleted") throw new Error(`dspex: an execution ended ${result.type}`);
      const step = samples[0]!;
      rows.push({ totalMs, ...step });
    }
    return rows;
  };

  return {
    workers,
    evaluate,
    sequential,
    stop,
  };
};

/**
 * DSPy in one long-lived Python process: one evaluation per request line. `speedups`: with the faster
 * copies of two DSPy helpers the dspex workers install (executor/dspy_speedups.py).
 */
const startDspy = async (python: string, examplesPath: string, rulesPath: string, speedups = false) => {
  const child: ChildProcessWithoutNullStreams = spawn(
    python,
    [
      ...["-m", "dspex_tools.bench.peers", "--examples", examplesPath, "--answers", rulesPath, "--serve"],
      ...(speedups ? ["--dspy-speedups"] : []),
    ],
    {
      cwd: root,
      env: withPythonTools({ ...process.env, LITELLM_LOCAL_MODEL_COST_MAP: "True" }),
      stdio: "pipe",
    },
  );
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const line = await lines.next();
    if (line.done) throw new Error(`the DSPy side exited (${child.exitCode}): ${stderr.trim()}`);
    return JSON.parse(line.value) as Record<string, unknown>;
  };
  await next(); // {"ready": true}
  return {
    async evaluate(threads: number, latencyMs: number): Promise<RoundResult & { cpuS: number }> {
      child.stdin.write(`${JSON.stringify({ threads, latency_ms: latencyMs, outputs: true })}\n`);
      const result = await next();
      return {
        wallS: Number(result.wall_s),
        cpuS: Number(result.cpu_s),
        score: Number(result.score),
        calls: Number(result.lm_calls),
        answers: result.outputs as Record<string, unknown>,
      };
    },
    async stop() {
      child.stdin.end();
      await new Promise((done) => (child.exitCode !== null ? done(undefined) : child.once("exit", done)));
    },
  };
};

const agreement = (a: Record<string, unknown>, b: Record<string, unknown>) => {
  const ids = Object.keys(a);
  return ids.filter((id) => a[id] === b[id]).length / Math.max(1, ids.length);
};

const ms = (values: number[]) => median(values);

export const peersSuite: Suite = {
  name: "peers",
  description: `plain DSPy Evaluate(num_threads=${N}) vs dspex with ${N} and ${2 * N} Python consumers, ${EXAMPLES} examples, test LM at ${LATENCIES.join(" and ")} ms`,
  async run() {
    const found = findPython();
    if (!found.python) {
      console.log(`# peers skipped: ${found.reason}`);
      return;
    }
    const python = found.python;
    const folder = mkdtempSync(join(tmpdir(), "dspex-bench-peers-data-"));
    const { examples, rules } = peerDataset(EXAMPLES);
    const examplesPath = join(folder, "examples.jsonl");
    const rulesPath = join(folder, "rules.json");
    writeFileSync(examplesPath, `${examples.map((e) => JSON.stringify(e)).join("\n")}\n`);
    writeFileSync(rulesPath, JSON.stringify(rules));

    // One after another (3N + 1 processes importing DSPy at once crowd 2 cores); startup is not timed.
    const started = Date.now();
    const stops: (() => Promise<void>)[] = [];
    try {
      const plain = await startDspy(python, examplesPath, rulesPath);
      stops.push(plain.stop);
      const tuned = await startDspy(python, examplesPath, rulesPath, true);
      stops.push(tuned.stop);
      const equal = await startDspex(python, N, rulesPath);
      stops.push(equal.stop);
      const double = await startDspex(python, 2 * N, rulesPath);
      stops.push(double.stop);
      console.log(
        `# peers: DSPy and ${3 * N} dspex workers up in ${((Date.now() - started) / 1000).toFixed(0)} s`,
      );
      // Warm-up, untimed: one full L = 0 round on every side, so that the timed rounds see processes in their
      // steady state (V8's optimised code and grown heap on dspex's side, DSPy's adapter state and caches).
      const warm = {
        dspy: await plain.evaluate(N, 0),
        tuned: await tuned.evaluate(N, 0),
        equal: await equal.evaluate(0, examples),
        double: await double.evaluate(0, examples),
      };
      console.log(
        `# peers warm-up round, L=0 ms, not timed: DSPy ${warm.dspy.wallS.toFixed(2)} s, dspex×${N} ${warm.equal.wallS.toFixed(2)} s, dspex×${2 * N} ${warm.double.wallS.toFixed(2)} s, DSPy with the workers' helpers ${warm.tuned.wallS.toFixed(2)} s`,
      );

      for (const latency of LATENCIES) {
        const rounds: {
          dspy: Awaited<ReturnType<typeof plain.evaluate>>;
          tuned?: Awaited<ReturnType<typeof plain.evaluate>>;
          equal: Awaited<ReturnType<typeof equal.evaluate>>;
          double: Awaited<ReturnType<typeof double.evaluate>>;
        }[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          const dspyRound = await plain.evaluate(N, latency);
          const equalRound = await equal.evaluate(latency, examples);
          const doubleRound = await double.evaluate(latency, examples);
          // With nothing to wait on, DSPy's own CPU is the bar: timed again with the workers' DSPy helpers.
          const tunedRound = latency === 0 ? await tuned.evaluate(N, latency) : undefined;
          rounds.push({ dspy: dspyRound, tuned: tunedRound, equal: equalRound, double: doubleRound });
          console.log(
            `# peers L=${latency} ms round ${r + 1}: DSPy ${dspyRound.wallS.toFixed(2)} s, dspex×${N} ${equalRound.wallS.toFixed(2)} s, dspex×${2 * N} ${doubleRound.wallS.toFixed(2)} s${tunedRound ? `, DSPy with the workers' helpers ${tunedRound.wallS.toFixed(2)} s` : ""}`,
          );
          for (const [name, side] of [
            [`dspex×${N}`, equalRound],
            [`dspex×${2 * N}`, doubleRound],
            ...(tunedRound ? ([["DSPy with the workers' helpers", tunedRound]] as const) : []),
          ] as const) {
            if (side.score !== dspyRound.score || agreement(dspyRound.answers, side.answers) !== 1)
              throw new Error(
                `peers: ${name} scored ${side.score} and agreed on ${agreement(dspyRound.answers, side.answers)} of the answers; DSPy scored ${dspyRound.score}`,
              );
          }
        }
        const label = `L${latency}ms`;
        const walls = {
          dspy: rounds.map((r) => r.dspy.wallS),
          equal: rounds.map((r) => r.equal.wallS),
          double: rounds.map((r) => r.double.wallS),
        };
        report("peers", `${label}.dspy.wall (${N} threads)`, median(walls.dspy), "s");
        report("peers", `${label}.dspy.wall_spread`, spread(walls.dspy) * 100, "%");
        report("peers", `${label}.dspex.wall (${N} consumers)`, median(walls.equal), "s");
        report("peers", `${label}.dspex.wall_spread (${N} consumers)`, spread(walls.equal) * 100, "%");
        report("peers", `${label}.dspex.wall (${2 * N} consumers)`, median(walls.double), "s");
        report("peers", `${label}.dspex.wall_spread (${2 * N} consumers)`, spread(walls.double) * 100, "%");
        const equalRatios = rounds.map((r) => r.equal.wallS / r.dspy.wallS);
        const doubleRatios = rounds.map((r) => r.double.wallS / r.dspy.wallS);
        report("peers", `${label}.ratio dspex/dspy (${N} vs ${N})`, median(equalRatios), "x");
        report("peers", `${label}.ratio_spread (${N} vs ${N})`, spread(equalRatios) * 100, "%");
        report("peers", `${label}.ratio dspex/dspy (${2 * N} vs ${N})`, median(doubleRatios), "x");
        report("peers", `${label}.ratio_spread (${2 * N} vs ${N})`, spread(doubleRatios) * 100, "%");
        report("peers", `${label}.score`, rounds[0]!.dspy.score, "");
        const tunedRounds = rounds.flatMap((r) => (r.tuned ? [{ ...r, tuned: r.tuned }] : []));
        if (tunedRounds.length > 0) {
          const tunedWalls = tunedRounds.map((r) => r.tuned.wallS);
          report("peers", `${label}.dspy_with_worker_helpers.wall (${N} threads)`, median(tunedWalls), "s");
          report(
            "peers",
            `${label}.ratio dspex/dspy_with_worker_helpers (${N} vs ${N})`,
            median(tunedRounds.map((r) => r.equal.wallS / r.tuned.wallS)),
            "x",
          );
          report(
            "peers",
            `${label}.dspy_with_worker_helpers.cpu_per_example`,
            ms(tunedRounds.map((r) => (r.tuned.cpuS * 1000) / EXAMPLES)),
            "ms",
          );
        }
        if (latency === 200) {
          const equalMet = median(equalRatios) <= 1.1;
          const doubleMet = median(doubleRatios) <= 0.55;
          console.log(
            `# peers goals at L=200 ms: ${N} vs ${N} ≤ 1.10: ${equalMet ? "met" : "NOT met"}; ${2 * N} vs ${N} ≤ 0.55: ${doubleMet ? "met" : "NOT met"}`,
          );
        }
        // Where the time goes, per example (medians over the rounds): CPU of each process, and how long
        // a worker (DSPy thread, dspex consumer) was taken per example, against the Python step itself.
        const per = (seconds: number) => (seconds * 1000) / EXAMPLES;
        report("peers", `${label}.dspy.cpu_per_example`, ms(rounds.map((r) => per(r.dspy.cpuS))), "ms");
        report(
          "peers",
          `${label}.dspy.thread_time_per_example`,
          ms(rounds.map((r) => per(r.dspy.wallS * N))),
          "ms",
        );
        for (const [side, workers] of [
          ["equal", N],
          ["double", 2 * N],
        ] as const) {
          const of = rounds.map((r) => r[side]);
          const name = `${workers} consumers`;
          report(
            "peers",
            `${label}.dspex.node_cpu_per_example (${name})`,
            ms(of.map((s) => per(s.nodeCpuS))),
            "ms",
          );
          report(
            "peers",
            `${label}.dspex.python_cpu_per_example (${name})`,
            ms(of.map((s) => per(s.pythonCpuS))),
            "ms",
          );
          report(
            "peers",
            `${label}.dspex.worker_time_per_example (${name})`,
            ms(of.map((s) => per(s.wallS * workers))),
            "ms",
          );
          report(
            "peers",
            `${label}.dspex.python_step_per_example (${name})`,
            ms(of.map((s) => s.steps.reduce((sum, x) => sum + x.stepMs, 0) / EXAMPLES)),
            "ms",
          );
        }
      }

      // Latency of one execution at a time (nothing queues): where a step's time goes.
      if (LATENCIES.includes(0)) {
        const rows = await equal.sequential(0, examples.slice(0, SEQUENTIAL));
        const total = ms(rows.map((r) => r.totalMs));
        const roundTrip = ms(rows.map((r) => r.roundTripMs));
        const step = ms(rows.map((r) => r.stepMs));
        report("peers", "L0ms.sequential.execution_p50", total, "ms");
        report(
          "peers",
          "L0ms.sequential.orchestration_p50",
          ms(rows.map((r) => r.totalMs - r.roundTripMs)),
          "ms",
        );
        report("peers", "L0ms.sequential.ipc_p50", ms(rows.map((r) => r.roundTripMs - r.stepMs)), "ms");
        report("peers", "L0ms.sequential.python_step_p50", step, "ms");
        console.log(
          `# peers: one execution at a time ${total.toFixed(1)} ms = orchestration ~${(total - roundTrip).toFixed(1)} + IPC ~${(roundTrip - step).toFixed(1)} + Python step ~${step.toFixed(1)}`,
        );
      }
    } finally {
      await Promise.allSettled(stops.map((stop) => stop()));
      rmSync(folder, { recursive: true, force: true });
    }
  },
};

if (import.meta.url === `file://${process.argv[1]}`) await peersSuite.run();
