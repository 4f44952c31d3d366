/**
 * `npm run bench -- learning` (on demand): does dspex's optimization learn as much as DSPy's own, on the
 * same model, data and budget? (issue 17)
 *
 * The task is the main job's classifier: the triage program of cli/demo/triage.ts, only its graded
 * `classify` stage (outputs ["category"]), exact match on `category`, the 48 train / 48 dev / 48 test
 * examples of cli/demo/dataset.ts. The model is DSPEX_LEARNING_MODEL (default `dspex/offline`; `dspex/test`
 * means `dspex/test?mode=nearest_demo`, as in the main job).
 *
 * dspex: each optimizer runs as the main job runs it (cli/commands/demo.ts): a fresh embedded log in a
 * temp folder, the pipeline, evaluation and registry processors, the Python stdio workers (one pool and
 * step runner as `startWorkers` builds them, kept for every run so DSPy and the model load once),
 * the program registered, `optimizeOnLog` with the main job's request (cli/demo/optimizations.ts), then the
 * registry's configuration (the winner if adopted, else the baseline) scored on the test split. LM calls
 * are the optimization result's `calls` (its dev baseline and final evaluations included); wall time is
 * the optimization alone. "chosen" is what the optimization picked before the adoption check (DSPy's
 * optimizers stop there), scored on the test split, and the calls it spent picking it (the dev baseline
 * and the check left out).
 *
 * DSPy (python-consumers/dspex_tools/bench/learning.py, one process after the dspex workers stopped):
 * BootstrapFewShot, BootstrapFewShotWithRandomSearch and SIMBA compile a `dspy.Predict` of the same
 * signature with the workers' LM and adapter; the compiled program is scored on dev and test. LM calls are
 * the compile's; wall time is the compile alone. The budgets follow from the dspex requests:
 * - BootstrapFewShot: the bootstrap's own parameters (4 bootstrapped demos, at most 4 demos, 1 round);
 *   it has no valset, so it never scores candidates (dspex's main job keeps the best of 16, scored on
 *   dev and the train examples each does not show); its counterpart is also dspex's bootstrap with one
 *   candidate, compared by what it chose before the check;
 * - BootstrapFewShotWithRandomSearch ↔ random search: DSPy's zero-shot, labeled-only, unshuffled and 14
 *   seeded candidates (17 configurations, each scored on the 48 dev examples), at most 6 demos (random
 *   search's `maxDemos`); dspex's random search scores the program on the trainset once (its demos are
 *   drawn from the examples it misses) and races 34 candidates on the dev and the train examples a
 *   candidate does not show (successive halving, 3 rungs), within fewer LM calls than DSPy's;
 * - SIMBA: the same steps, mini-batch, candidates and demos as dspex's SIMBA, seed 7 like dspex's.
 * Both sides run up to 2 × workers examples at once.
 *
 * Goals (issue 17): for bootstrap, random search and SIMBA, dspex's test score ≥ DSPy's counterpart with
 * ≤ its LM calls; TPE (bayes) ≥ random search at equal calls.
 *
 * Env: DSPEX_LEARNING_MODEL (dspex/offline), DSPEX_LEARNING_WORKERS (the config's python.workers, 2),
 * DSPEX_LEARNING_ONLY (comma-separated run names, e.g. `dspex.bootstrap,dspy.SIMBA`: for development),
 * DSPEX_LEARNING_VERBOSE=1 (the DSPy process's stderr, progress lines).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { configOf, logConfigOf } from "../app/log.ts";
import { pythonOf, startProcessors, workerEnvironment } from "../app/services.ts";
import { devset, testset, trainset } from "../cli/demo/dataset.ts";
import { optimizationOf } from "../cli/demo/optimizations.ts";
import { classifyInstructions, triageProgram } from "../cli/demo/triage.ts";
import { historyOf } from "../processors/optimizers/history.ts";
import type { OptimizerName } from "../processors/optimizers/index.ts";
import { optimizeOnLog, streamEvaluator } from "../processors/optimizers/stream.ts";
import { startWorkerPool, type WorkerPool } from "../processors/workers/pool.ts";
import { findPython } from "../processors/workers/python.ts";
import { startStepRunner } from "../processors/workers/step-runner.ts";
import { registerProgram } from "../programs/register.ts";
import type { Example, JsonRecord } from "../streams/events/index.ts";
import { newId } from "../streams/ids.ts";
import type { EventLog } from "../streams/log.ts";
import { openLog } from "../streams/open.ts";
import { readEvents } from "../streams/store.ts";
import { Topics } from "../streams/topics.ts";
import { withPythonTools } from "../tests/support/python-tools.ts";
import { report, type Suite, seconds } from "./report.ts";

const root = new URL("..", import.meta.url).pathname;
const SUITE = "learning";

const requestedModel = process.env.DSPEX_LEARNING_MODEL ?? "dspex/offline";
/** As the main job runs a model id: the test LM learns from demos only in its nearest-demo mode. */
const model = requestedModel === "dspex/test" ? "dspex/test?mode=nearest_demo" : requestedModel;
const only = (process.env.DSPEX_LEARNING_ONLY ?? "").split(",").filter(Boolean);
const wanted = (name: string) => only.length === 0 || only.includes(name);
const verbose = process.env.DSPEX_LEARNING_VERBOSE === "1";

const variables = ["classify.demos", "classify.temperature", "classify.instructions"];
const metric = { name: "exact_match", field: "category", params: {} };

interface DspexRun {
  name: string;
  optimizer: OptimizerName;
  request: ReturnType<typeof optimizationOf>;
  /** What the run is, when its name doesn't say. */
  note?: string;
}

const bootstrapRequest = optimizationOf("bootstrap");
const dspexRuns: DspexRun[] = [
  { name: "bootstrap", optimizer: "bootstrap", request: bootstrapRequest },
  { name: "simba", optimizer: "simba", request: optimizationOf("simba") },
  { name: "bayes", optimizer: "bayes", request: optimizationOf("bayes") },
  { name: "random", optimizer: "random", request: optimizationOf("random") },
  {
    name: "bootstrap_1candidate",
    optimizer: "bootstrap",
    request: { ...bootstrapRequest, params: { ...bootstrapRequest.params, candidates: 1 } },
    note: "1 candidate, as DSPy's BootstrapFewShot",
  },
];

// ---- DSPy's budgets, derived from the dspex requests above.

const num = (value: unknown) => Number(value);
const dspyOptimizers = (threads: number): Record<string, JsonRecord> => {
  const boot = optimizationOf("bootstrap").params;
  const search = optimizationOf("random");
  const simba = optimizationOf("simba");
  return {
    BootstrapFewShot: {
      max_bootstrapped_demos: num(boot.maxBootstrappedDemos),
      max_labeled_demos: num(boot.maxLabeledDemos),
      max_rounds: 1,
    },
    // Its zero-shot, labeled-only and unshuffled candidates come before the seeded ones: 3 + 14 = 17
    // configurations scored on the 48 dev examples, ~870 LM calls with its bootstraps — more than dspex's
    // random search spends racing its candidates (planned calls printed with its request).
    BootstrapFewShotWithRandomSearch: {
      max_bootstrapped_demos: num(boot.maxBootstrappedDemos),
      max_labeled_demos: num(search.params.maxDemos),
      num_candidate_programs: 14,
      num_threads: threads,
    },
    SIMBA: {
      bsize: num(simba.params.bsize),
      num_candidates: num(simba.params.numCandidates),
      max_steps: num(simba.params.maxSteps),
      max_demos: num(simba.params.maxDemos),
      num_threads: threads,
      seed: simba.seed,
    },
  };
};

/** Which dspex run each DSPy optimizer is paired with, for the goals. */
const pairs: { goal: string; dspex: string; dspy: string; chosen?: boolean }[] = [
  { goal: "bootstrap", dspex: "bootstrap", dspy: "BootstrapFewShot" },
  // DSPy's BootstrapFewShot neither scores nor checks what it built: the same for dspex's one candidate.
  {
    goal: "bootstrap, the program built before any check",
    dspex: "bootstrap_1candidate",
    dspy: "BootstrapFewShot",
    chosen: true,
  },
  { goal: "random search", dspex: "random", dspy: "BootstrapFewShotWithRandomSearch" },
  { goal: "SIMBA", dspex: "simba", dspy: "SIMBA" },
];

interface Row {
  side: "dspex" | "dspy";
  name: string;
  test: number;
  dev: number;
  calls: number;
  wallS: number;
  /** What the optimization chose before dspex's adoption check, and the calls it spent on that choice. */
  chosen: { test: number; calls: number };
  note?: string;
}

const categoriesOf = (demos: unknown): string =>
  Array.isArray(demos)
    ? `[${demos.map((d) => String((d as JsonRecord).category ?? "?")).join(", ")}]`
    : "(none)";

// ---- dspex

const startPool = (python: string, workers: number) =>
  startWorkerPool({ python, workers, env: workerEnvironment(workers) });

/**
 * What an optimization chose before the adoption check (DSPy's optimizers stop there): the configuration of
 * its final trial, and the calls of the dev baseline and of that check, which DSPy's don't spend.
 */
const chosenOf = async (log: EventLog, optimizationId: string) => {
  const events = (await readEvents(log, Topics.optimizations)).flatMap((r) =>
    "event" in r ? [r.event] : [],
  );
  const { trials } = historyOf(optimizationId, events);
  const checks = trials.filter((t) => t.trial.phase === "baseline" || t.trial.phase === "final");
  return {
    overrides: trials.find((t) => t.trial.phase === "final")?.trial.overrides ?? {},
    checkCalls: checks.reduce((sum, t) => sum + (t.calls ?? 0), 0),
  };
};

/** One optimization as the main job runs it, on a fresh embedded log; the pool is shared between runs. */
const runDspex = async (pool: WorkerPool, workers: number, run: DspexRun, withBaseline: boolean) => {
  const folder = mkdtempSync(join(tmpdir(), "dspex-bench-learning-"));
  const config = configOf({ backend: "embedded", log: join(folder, "log.db") });
  const log = await openLog(logConfigOf(config));
  const processors = startProcessors({ log, config }, { only: ["pipeline", "evaluation", "registry"] });
  const runner = startStepRunner(log, pool, { maxInFlight: workers * 2 });
  const { guard } = processors;
  try {
    await processors.ready();
    const program = triageProgram(model).build();
    await registerProgram(log, program);
    const scoreOn = async (examples: readonly Example[], overrides: JsonRecord = {}) => {
      const outcome = await guard(
        streamEvaluator(log).evaluate({
          evaluationId: newId(),
          programId: program.programId,
          examples,
          metric,
          overrides,
          concurrency: workers * 2,
          failureScore: 0,
          outputs: ["category"],
        }),
      );
      if (outcome.errors > 0) console.log(`# learning: dspex.${run.name}: ${outcome.errors} examples failed`);
      return outcome;
    };
    const baseline = withBaseline
      ? { test: (await scoreOn(testset)).score, dev: (await scoreOn(devset)).score }
      : undefined;
    let lastPhase = "";
    const started = process.hrtime.bigint();
    const result = await guard(
      optimizeOnLog(
        log,
        {
          optimizationId: newId(),
          programId: program.programId,
          optimizer: run.optimizer,
          variables,
          trainset,
          devset,
          metric,
          ...run.request,
        },
        {
          concurrency: workers * 2,
          onProgress(p) {
            if (verbose && p.phase !== lastPhase)
              console.log(
                `# learning: dspex.${run.name} trial ${p.trial + 1}/${p.plannedTrials} ${p.phase}, ${p.calls}/${p.plannedCalls} calls`,
              );
            lastPhase = p.phase;
          },
        },
      ),
    );
    const wallS = seconds(started);
    const test = (await scoreOn(testset)).score;
    const chosen = await chosenOf(log, result.optimizationId);
    const chosenProgram = {
      test: result.accepted ? test : (await scoreOn(testset, chosen.overrides)).score,
      calls: result.calls - chosen.checkCalls,
    };
    const adopted = result.accepted ? result.bestConfig : {};
    const demos = adopted[`${program.programId}.classify.demos`];
    const instructions = adopted[`${program.programId}.classify.instructions`];
    const temperature = adopted[`${program.programId}.classify.temperature`];
    console.log(
      `# learning: dspex.${run.name}: dev ${result.baselineScore.toFixed(3)} → winner ${result.candidateScore.toFixed(3)}, ${result.accepted ? "adopted" : `not adopted (margin ${run.request.params.margin})`}; ${result.trials} trials, ${result.calls} LM calls (planned ${result.plannedCalls}), ${wallS.toFixed(1)} s; adopted demos ${result.accepted ? categoriesOf(demos) : "(baseline kept)"}${typeof instructions === "string" ? `, instructions "${instructions}"` : ""}${typeof temperature === "number" ? `, temperature ${temperature}` : ""}`,
    );
    return { baseline, result, test, chosen: chosenProgram, wallS };
  } finally {
    await runner.stop();
    await processors.stop();
    await log.close();
    rmSync(folder, { recursive: true, force: true });
  }
};

// ---- DSPy

interface DspyResult {
  name: string;
  dev: number;
  test: number;
  lm_calls?: number;
  wall_s?: number;
  seconds?: number;
  demos?: { message: string; category: string }[];
  instructions?: string;
  params?: JsonRecord;
}

const runDspy = async (python: string, threads: number, names: readonly string[]): Promise<DspyResult[]> => {
  const folder = mkdtempSync(join(tmpdir(), "dspex-bench-learning-dspy-"));
  const program = triageProgram(model).build();
  const classify = program.stages.find((s) => s.id === "classify")!;
  const taskPath = join(folder, "task.json");
  const optimizers = Object.fromEntries(
    Object.entries(dspyOptimizers(threads)).filter(([name]) => names.includes(name)),
  );
  writeFileSync(
    taskPath,
    JSON.stringify({
      model,
      signature: classify.signature,
      maxTokens: 512, // a step's default (processors/pipeline/planner.ts): classify declares none
      threads,
      trainset,
      devset,
      testset,
      optimizers,
    }),
  );
  const child: ChildProcessWithoutNullStreams = spawn(
    python,
    ["-m", "dspex_tools.bench.learning", "--task", taskPath],
    { cwd: root, env: withPythonTools(workerEnvironment(1)), stdio: "pipe" },
  );
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    if (verbose) process.stderr.write(chunk);
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  const results: DspyResult[] = [];
  try {
    for await (const line of createInterface({ input: child.stdout })) {
      if (!line.trim()) continue;
      const result = JSON.parse(line) as DspyResult;
      results.push(result);
      if (result.name === "zero-shot") continue;
      console.log(
        `# learning: dspy.${result.name}(${JSON.stringify(result.params)}): ${result.lm_calls} LM calls, ${result.wall_s?.toFixed(1)} s; demos ${categoriesOf(result.demos)}${result.instructions && result.instructions !== classifyInstructions ? `, instructions "${result.instructions.replace(/\s+/g, " ").slice(0, 200)}"` : ""}`,
      );
    }
    const code = await exited;
    if (code !== 0) throw new Error(`the DSPy side exited with ${code}: ${stderr.trim()}`);
    return results;
  } finally {
    if (child.exitCode === null) child.kill();
    rmSync(folder, { recursive: true, force: true });
  }
};

// ---- the table and the goals

const fixed = (value: number, digits = 3) => (Number.isFinite(value) ? value.toFixed(digits) : "—");

const table = (rows: readonly Row[]) => {
  const header = ["run", "test", "dev", "LM calls", "chosen: test", "its calls", "wall s"];
  const count = (calls: number) => (Number.isFinite(calls) ? String(calls) : "—");
  const cells = rows.map((r) => [
    `${r.side}.${r.name}${r.note ? ` (${r.note})` : ""}`,
    fixed(r.test),
    fixed(r.dev),
    count(r.calls),
    fixed(r.chosen.test),
    count(r.chosen.calls),
    fixed(r.wallS, 1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c.map((text, i) => (i === 0 ? text.padEnd(widths[i]!) : text.padStart(widths[i]!))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)];
};

const goals = (rows: readonly Row[]) => {
  const find = (side: Row["side"], name: string) => rows.find((r) => r.side === side && r.name === name);
  const lines: string[] = [];
  for (const pair of pairs) {
    const run = find("dspex", pair.dspex);
    const theirs = find("dspy", pair.dspy);
    if (!run || !theirs) continue;
    const ours = pair.chosen ? run.chosen : run;
    const score = ours.test >= theirs.test;
    const calls = ours.calls <= theirs.calls;
    lines.push(
      `${pair.goal}: dspex ${pair.dspex} test ${fixed(ours.test)} vs DSPy ${pair.dspy} ${fixed(theirs.test)} (${score ? "≥" : "<"}), LM calls ${ours.calls} vs ${theirs.calls} (${calls ? "≤" : ">"}): ${score && calls ? "met" : `NOT met (${[score ? "" : "test score", calls ? "" : "LM calls"].filter(Boolean).join(", ")})`}`,
    );
  }
  const tpe = find("dspex", "bayes");
  const random = find("dspex", "random");
  if (tpe && random) {
    const met = tpe.test >= random.test;
    lines.push(
      `TPE vs random search: test ${fixed(tpe.test)} vs ${fixed(random.test)} at ${tpe.calls} vs ${random.calls} LM calls: ${met ? "met" : "NOT met"}${tpe.calls === random.calls ? "" : " (calls differ)"}`,
    );
  }
  return lines;
};

export const learningSuite: Suite = {
  name: SUITE,
  description: `dspex's bootstrap, SIMBA, TPE and random search vs DSPy's BootstrapFewShot, BootstrapFewShotWithRandomSearch and SIMBA on the main job's classifier (${trainset.length} train / ${devset.length} dev / ${testset.length} test), model ${model}: test and dev score, LM calls, wall time`,
  async run() {
    const found = findPython();
    if (!found.python) {
      console.log(`# learning skipped: ${found.reason}`);
      return;
    }
    const config = configOf({ backend: "embedded" });
    const python = pythonOf(config);
    const workers = Number(process.env.DSPEX_LEARNING_WORKERS ?? config.python.workers);
    if (!Number.isInteger(workers) || workers <= 0)
      throw new Error("DSPEX_LEARNING_WORKERS must be a positive integer");
    const threads = workers * 2;
    console.log(
      `# learning: model ${model}; dspex with ${workers} Python workers (${threads} examples at once), DSPy with ${threads} threads`,
    );
    for (const run of dspexRuns)
      if (wanted(`dspex.${run.name}`))
        console.log(
          `# learning: dspex.${run.name} request ${JSON.stringify({ budget: run.request.budget, seed: run.request.seed, params: { ...run.request.params, instructionCandidates: undefined } })}`,
        );
    const rows: Row[] = [];

    const chosen = dspexRuns.filter((run) => wanted(`dspex.${run.name}`));
    if (chosen.length > 0) {
      const started = Date.now();
      const pool = startPool(python, workers);
      try {
        await pool.ready(600_000);
        console.log(
          `# learning: ${workers} dspex workers up in ${((Date.now() - started) / 1000).toFixed(0)} s`,
        );
        for (const [i, run] of chosen.entries()) {
          const outcome = await runDspex(pool, workers, run, i === 0);
          if (outcome.baseline) {
            rows.push({
              side: "dspex",
              name: "baseline",
              test: outcome.baseline.test,
              dev: outcome.baseline.dev,
              calls: 0,
              wallS: Number.NaN,
              chosen: { test: outcome.baseline.test, calls: 0 },
              note: "the registry's configuration, no optimization",
            });
          }
          rows.push({
            side: "dspex",
            name: run.name,
            test: outcome.test,
            dev: outcome.result.bestScore,
            calls: outcome.result.calls,
            wallS: outcome.wallS,
            chosen: outcome.chosen,
            note:
              [run.note, outcome.result.accepted ? "" : "not adopted"].filter(Boolean).join("; ") ||
              undefined,
          });
        }
      } finally {
        await pool.close();
      }
    }

    const dspyNames = Object.keys(dspyOptimizers(threads)).filter((name) => wanted(`dspy.${name}`));
    if (dspyNames.length > 0 || wanted("dspy.zero_shot")) {
      const results = await runDspy(python, threads, dspyNames);
      for (const r of results) {
        rows.push({
          side: "dspy",
          name: r.name === "zero-shot" ? "zero_shot" : r.name,
          test: r.test,
          dev: r.dev,
          calls: r.lm_calls ?? 0,
          wallS: r.wall_s ?? Number.NaN,
          chosen: { test: r.test, calls: r.lm_calls ?? 0 },
          note: r.name === "zero-shot" ? "no optimization" : undefined,
        });
      }
    }

    for (const row of rows) {
      const prefix = `${row.side}.${row.name}`;
      report(SUITE, `${prefix}.test_score`, row.test, "");
      report(SUITE, `${prefix}.dev_score`, row.dev, "");
      if (row.name !== "baseline" && row.name !== "zero_shot") {
        report(SUITE, `${prefix}.lm_calls`, row.calls, "calls");
        report(SUITE, `${prefix}.wall_time`, row.wallS, "s");
        if (row.side === "dspex") {
          report(SUITE, `${prefix}.chosen_test_score`, row.chosen.test, "");
          report(SUITE, `${prefix}.chosen_lm_calls`, row.chosen.calls, "calls");
        }
      }
    }
    const base = rows.find((r) => r.side === "dspex" && r.name === "baseline");
    const zero = rows.find((r) => r.side === "dspy" && r.name === "zero_shot");
    if (base && zero) {
      const same = Math.abs(base.test - zero.test) < 1e-9 && Math.abs(base.dev - zero.dev) < 1e-9;
      console.log(
        same
          ? `# learning: the zero-shot program scores the same on both sides (test ${fixed(base.test)}, dev ${fixed(base.dev)}): the same prompts to the same LM`
          : `# learning: the zero-shot program scores differently on the two sides (dspex test ${fixed(base.test)} dev ${fixed(base.dev)}, DSPy ${fixed(zero.test)} ${fixed(zero.dev)}): not the same prompt or LM`,
      );
    }
    console.log(
      `# learning: test and dev are exact match on category; dev is the configuration each run ends with`,
    );
    for (const line of table(rows)) console.log(`# ${line}`);
    for (const line of goals(rows)) console.log(`# goal ${line}`);
  },
};

if (import.meta.url === `file://${process.argv[1]}`) await learningSuite.run();
