import { rmSync } from "node:fs";
import { Command } from "commander";
import { configOf, describeLog, type LogOptions, openConfiguredLog } from "../../app/log.ts";
import { type RunningWorkers, startProcessors, startWorkers } from "../../app/services.ts";
import { optimizeOnLog, streamEvaluator } from "../../processors/optimizers/stream.ts";
import { readRegistry, registerProgram } from "../../programs/register.ts";
import {
  executionsProjection,
  projectionRunner,
  stateHash,
  variablesProjection,
} from "../../projections/index.ts";
import { createClient } from "../../streams/client.ts";
import { newId } from "../../streams/ids.ts";
import type { EventLog } from "../../streams/log.ts";
import { positiveInteger } from "../arguments.ts";
import { devset, testset, trainset } from "../demo/dataset.ts";
import { optimizationOf } from "../demo/optimizations.ts";
import { triageProgram } from "../demo/triage.ts";
import { withLogOptions } from "../log.ts";
import { evaluationProgress, progressLine } from "../progress.ts";

const step = (text: string) => console.log(`\n▸ ${text}`);
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

const short = (value: unknown, width = 60): string => {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
};

/** Variables, their versions and history, from the registry projection. */
const printRegistry = async (log: EventLog) => {
  const { variables } = await readRegistry(log);
  for (const [id, state] of [...variables].sort(([a], [b]) => a.localeCompare(b))) {
    console.log(`  ${id}  v${state.version} = ${short(state.value)}`);
    for (const change of state.history) {
      console.log(`      v${change.version} by ${change.actor}: ${short(change.reason, 70)}`);
    }
  }
};

/** Folds the log twice — as it was followed live, and from scratch — and compares the states. */
const replayCheck = async (log: EventLog, live: ReturnType<typeof projectionRunner>) => {
  await live.catchUp();
  const started = Date.now();
  const rebuilt = projectionRunner({
    name: "replay-check",
    log,
    projections: [variablesProjection, executionsProjection],
  });
  const events = await rebuilt.rebuild();
  // Maps hash by key (canonical JSON sorts them): the order entities were first seen in differs between a
  // live follow and a rebuild on Kafka, where transactions become visible later than they were written.
  const hashOf = (runner: ReturnType<typeof projectionRunner>) =>
    stateHash({ variables: runner.state("variables"), executions: runner.state("executions") });
  return { live: hashOf(live), rebuilt: hashOf(rebuilt), events, ms: Date.now() - started };
};

/** The LM the demo runs a model id as: the test LM learns from demos only in its nearest-demo mode. */
const modelOf = (model: string) => (model === "dspex/test" ? "dspex/test?mode=nearest_demo" : model);

/**
 * The main job: support triage on the embedded log with real Python workers — register the program, run a
 * request end to end, score the registry's configuration on the held-out test split, optimize the
 * classifier on the train and dev splits, score the adopted configuration on the test split again, show
 * the registry and prove replay.
 */
export const demoCommand = withLogOptions(new Command("demo"))
  .description("the main job: evaluate, optimize and re-evaluate a bundled support-triage program end to end")
  .option("--model <id>", "LM for the DSPy stages: dspex/offline (default), dspex/test, or a LiteLLM id")
  .option("--workers <n>", "Python workers (default: config python.workers, 2)", positiveInteger)
  .option("--optimizer <name>", "bootstrap, simba, bayes or random", "bootstrap")
  .option("--keep", "keep the previous demo log instead of starting a fresh one")
  .action(
    async (options: LogOptions & { model?: string; workers?: number; optimizer: string; keep?: boolean }) => {
      const began = Date.now();
      const config = configOf({ ...options, log: options.log ?? ".dspex/demo.db" });
      if (config.backend === "embedded" && !options.keep) {
        for (const suffix of ["", "-wal", "-shm"])
          rmSync(`${config.embedded.path}${suffix}`, { force: true });
      }
      const model = modelOf(options.model ?? config.lm.model);
      const workers = options.workers ?? config.python.workers;
      const { log } = await openConfiguredLog({ ...options, log: config.embedded.path });
      console.log(`dspex main job on ${describeLog(config)}, model ${model}, ${workers} Python workers`);

      let workersOf: RunningWorkers | undefined;
      const processors = startProcessors({ log, config }, { only: ["pipeline", "evaluation", "registry"] });
      const live = projectionRunner({
        name: "demo",
        log,
        projections: [variablesProjection, executionsProjection],
      });
      const following = live.follow();
      const { guard } = processors;
      try {
        workersOf = startWorkers({ log, config }, { workers });
        step(
          "starting the pipeline, the evaluation and registry processors and the Python workers (loading DSPy)",
        );
        let started = Date.now();
        await guard(Promise.all([workersOf.ready(300_000), processors.ready()]));
        console.log(`  ready in ${seconds(started)}`);

        const program = triageProgram(model).build();
        await registerProgram(log, program);
        step(
          `registered ${program.programId}: ${program.stages.map((s) => `${s.id} (${s.module})`).join(" → ")}`,
        );

        step("one request end to end (retrieve ∥ classify → draft)");
        started = Date.now();
        const first = await guard(
          createClient(log).execute({
            programId: program.programId,
            inputs: { message: testset[0]!.inputs.message! },
          }),
        );
        if (first.type !== "ExecutionCompleted")
          throw new Error(`the first request did not complete: ${JSON.stringify(first.data)}`);
        console.log(
          `  "${short(testset[0]!.inputs.message, 50)}" → ${first.data.outputs.category}: "${short(first.data.outputs.reply, 70)}" (${seconds(started)})`,
        );

        const metric = { name: "exact_match", field: "category", params: {} };
        const scoreOnTest = (what: string) => {
          const evaluationId = newId();
          const counting = evaluationProgress(
            log,
            evaluationId,
            testset.length,
            `  ${what}:`,
            process.stdout,
          );
          return guard(
            streamEvaluator(log).evaluate({
              evaluationId,
              programId: program.programId,
              examples: testset,
              metric,
              overrides: {},
              concurrency: workers * 2,
              failureScore: 0,
              outputs: ["category"],
            }),
          ).finally(() => counting.stop());
        };

        step(
          `baseline: the registry's configuration on the ${testset.length} held-out test examples (only the graded classify stage runs)`,
        );
        started = Date.now();
        const before = await scoreOnTest("baseline");
        console.log(`  test score ${before.score.toFixed(3)} (${seconds(started)})`);

        const optimization = optimizationOf(options.optimizer);
        const scoredOn = `${
          optimization.params.searchOn === "dev+train"
            ? `${devset.length} dev examples and the train examples they don't show as demos`
            : `${devset.length} dev examples`
        }${Number(optimization.params.rungs) > 1 ? ` (racing: the best third of each rung scored on three times as many)` : ""}`;
        step(
          `optimizing the classifier with ${options.optimizer}: demos from ${trainset.length} train examples, candidates scored on ${scoredOn}, the test split never seen`,
        );
        started = Date.now();
        const progress = progressLine(process.stdout);
        const result = await guard(
          optimizeOnLog(
            log,
            {
              optimizationId: newId(),
              programId: program.programId,
              optimizer: options.optimizer as "bootstrap",
              variables: ["classify.demos", "classify.temperature", "classify.instructions"],
              trainset,
              devset,
              metric,
              ...optimization,
            },
            {
              concurrency: workers * 2,
              onProgress(p) {
                progress.update(
                  `  trial ${p.trial + 1}/${p.plannedTrials} | ${p.phase} ${p.score.toFixed(3)} | best dev ${p.bestScore.toFixed(3)} | LM calls ${p.calls}/${p.plannedCalls}`,
                );
              },
            },
          ),
        ).finally(() => progress.stop());
        const optimizeTime = seconds(started);
        console.log(
          `  dev score ${result.baselineScore.toFixed(3)} → ${result.candidateScore.toFixed(3)}: ${result.accepted ? "adopted" : `not adopted (needs more than +${optimization.params.margin} on dev)`}; ${result.trials} trials, ${result.calls} LM calls, ${optimizeTime}`,
        );

        step("the registry's configuration after the optimization, on the same held-out test examples");
        started = Date.now();
        const after = await scoreOnTest("after");
        console.log(`  test score ${after.score.toFixed(3)} (${seconds(started)})`);

        step("before / after on the held-out test split (exact match on the category)");
        console.table([
          { configuration: "baseline", "test score": before.score.toFixed(3) },
          { configuration: `after ${options.optimizer}`, "test score": after.score.toFixed(3) },
          { configuration: "gain", "test score": (after.score - before.score).toFixed(3) },
        ]);

        step("the variable registry (value, version, history)");
        await printRegistry(log);

        step("replay check: projections rebuilt from the log vs. followed live");
        const check = await guard(replayCheck(log, live));
        console.log(
          `  live    ${check.live}\n  rebuilt ${check.rebuilt}  (${check.events} events in ${check.ms} ms)`,
        );
        if (check.live !== check.rebuilt)
          throw new Error("replay check failed: the rebuilt state differs from the live one");
        console.log("  ✓ identical");
        console.log(`\ndone in ${seconds(began)}`);
      } finally {
        following.unsubscribe();
        await processors.stop();
        await workersOf?.stop();
        await log.close();
      }
    },
  );
