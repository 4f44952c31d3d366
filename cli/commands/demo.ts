import { rmSync } from "node:fs";
import { Command } from "commander";
import { optimizeOnLog, streamEvaluator } from "../../processors/optimizers/stream.ts";
import { readRegistry, registerProgram } from "../../programs/register.ts";
import {
  executionsProjection,
  projectionRunner,
  stateHash,
  variablesProjection,
} from "../../projections/index.ts";
import { newId } from "../../streams/ids.ts";
import type { EventLog } from "../../streams/log.ts";
import { positiveInteger } from "../arguments.ts";
import { devset, trainset } from "../demo/dataset.ts";
import { triageProgram } from "../demo/triage.ts";
import { configOf, describeLog, type LogOptions, openCommandLog, withLogOptions } from "../log.ts";
import { progressLine } from "../progress.ts";
import { startLocalWorkers, startProcessors } from "../services.ts";

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

/**
 * The main job: support triage on the embedded log with real Python workers — register the program,
 * evaluate, optimize the classifier's demos, evaluate again, show the registry and prove replay.
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
      const model = options.model ?? config.lm.model;
      const workers = options.workers ?? config.python.workers;
      const { log } = await openCommandLog({ ...options, log: config.embedded.path });
      console.log(`dspex main job on ${describeLog(config)}, model ${model}, ${workers} Python workers`);

      let workersOf: ReturnType<typeof startLocalWorkers> | undefined;
      const processors = startProcessors(log, config, ["pipeline", "evaluation", "registry"]);
      const live = projectionRunner({
        name: "demo",
        log,
        projections: [variablesProjection, executionsProjection],
      });
      const following = live.follow();
      const { guard } = processors;
      try {
        workersOf = startLocalWorkers(log, config, workers);
        step("starting the pipeline, the evaluation processor and the Python workers (loading DSPy)");
        let started = Date.now();
        await guard(Promise.all([workersOf.ready(300_000), processors.ready()]));
        console.log(`  ready in ${seconds(started)}`);

        const program = triageProgram(model).build();
        await registerProgram(log, program);
        step(
          `registered ${program.programId}: ${program.stages.map((s) => `${s.id} (${s.module})`).join(" → ")}`,
        );

        const metric = { name: "exact_match", field: "category", params: {} };
        step(
          `optimizing with ${options.optimizer}: baseline on ${devset.length} dev examples, search on ${trainset.length} train examples, winner on dev`,
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
              variables: [],
              trainset,
              devset,
              metric,
              budget: { maxTrials: 6 },
              seed: 7,
              params: { maxBootstrappedDemos: 4, maxLabeledDemos: 4 },
            },
            {
              concurrency: workers * 2,
              onProgress(p) {
                progress.update(
                  `  trial ${p.trial + 1}/${p.plannedTrials} | ${p.phase} | best ${p.bestScore.toFixed(3)} | LM calls ${p.calls}/${p.plannedCalls}`,
                );
              },
            },
          ),
        ).finally(() => progress.stop());
        const optimizeTime = seconds(started);

        step("evaluating the registry's current configuration on the dev set");
        started = Date.now();
        const after = await guard(
          streamEvaluator(log).evaluate({
            evaluationId: newId(),
            programId: program.programId,
            examples: devset,
            metric,
            overrides: {},
            concurrency: workers * 2,
            failureScore: 0,
          }),
        );

        step("before / after (dev set, exact match on the category)");
        console.table([
          { run: "baseline", "dev score": result.baselineScore.toFixed(3) },
          { run: `${options.optimizer} winner`, "dev score": result.candidateScore.toFixed(3) },
          { run: "registry after adoption", "dev score": after.score.toFixed(3) },
        ]);
        console.log(
          `  ${result.accepted ? "adopted" : "not adopted (no better than the baseline)"}; ${result.trials} trials, ` +
            `${result.calls + after.usage.calls} LM calls, optimization ${optimizeTime}, evaluation ${seconds(started)}`,
        );

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
