import { Command, Option } from "commander";
import { readExamples } from "../../app/examples.ts";
import { describeLog, type LogOptions, openConfiguredLog } from "../../app/log.ts";
import { type ProcessorName, useDeployment } from "../../app/services.ts";
import { optimizers } from "../../processors/optimizers/index.ts";
import { followOptimization, optimizationRequested } from "../../processors/optimizers/runner.ts";
import { readRegistry } from "../../programs/register.ts";
import type { OptimizationHints } from "../../streams/events/index.ts";
import { newId } from "../../streams/ids.ts";
import { appendEvents } from "../../streams/store.ts";
import { jsonObject, positiveInteger } from "../arguments.ts";
import { withLogOptions } from "../log.ts";
import { progressLine } from "../progress.ts";
import { hasDspyStages } from "./run.ts";

const note = (text: string) => process.stderr.write(`${text}\n`);

/** What an optimization needs running: its evaluations run through the pipeline, its leases the registry. */
const optimizationNeeds: ProcessorName[] = ["pipeline", "evaluation", "registry", "optimizer"];

/** What the request leaves to the program's hints, as "name value" (shown before it runs). */
const hintsUsed = (
  hints: OptimizationHints | undefined,
  options: { optimizer?: string; maxTrials?: number; maxCalls?: number; priority?: number },
): string[] => [
  ...(options.optimizer === undefined && hints?.optimizer ? [`optimizer ${hints.optimizer}`] : []),
  ...(options.maxTrials === undefined && hints?.budget?.maxTrials
    ? [`max trials ${hints.budget.maxTrials}`]
    : []),
  ...(options.maxCalls === undefined && hints?.budget?.maxCalls
    ? [`max calls ${hints.budget.maxCalls}`]
    : []),
  ...(options.priority === undefined && hints?.priority !== undefined ? [`priority ${hints.priority}`] : []),
];

export const optimizeCommand = withLogOptions(new Command("optimize"))
  .description(
    "optimize a program's variables on a trainset, judged on a devset; the winner lands as VariableChanged",
  )
  .argument("<programId>", "the registered program")
  .addOption(
    new Option("--optimizer <name>", "the algorithm (default: the program's hint, else bootstrap)").choices(
      Object.keys(optimizers),
    ),
  )
  .requiredOption("--trainset <file>", "training examples (JSONL: {id?, inputs, expected})", readExamples)
  .requiredOption("--devset <file>", "dev examples (JSONL)", readExamples)
  .option("--metric <name>", "exact_match, f1, contains, numeric, or a registered one", "exact_match")
  .option("--field <name>", "the output field the metric compares")
  .option("--variables <ids...>", "variables to optimize (default: all of the program's)")
  .option("--max-trials <n>", "budget: search trials at most", positiveInteger)
  .option("--max-calls <n>", "budget: LM calls at most", positiveInteger)
  .option(
    "--priority <n>",
    "among the requests an optimizer holds, higher first (default: the program's hint)",
    Number,
  )
  .option("--seed <n>", "random seed (a run is reproducible from it)", Number, 0)
  .option("--params <json>", "optimizer parameters, e.g. '{\"maxBootstrappedDemos\":4}'", jsonObject, {})
  .option("--id <optimizationId>", "resume this optimization (default: a new id)")
  .option("--local", "run the processors and Python workers it needs in this process")
  .option("--no-local", "only publish and follow: a deployment runs it (`dspex processors`)")
  .option("--workers <n>", "Python workers when this process starts them", positiveInteger)
  .action(async (programId: string, options) => {
    const { log, config } = await openConfiguredLog(options as LogOptions);
    const progress = progressLine(process.stderr);
    let deployment: Awaited<ReturnType<typeof useDeployment>> | undefined;
    try {
      const program = (await readRegistry(log)).programs.get(programId);
      if (!program) throw new Error(`no program ${programId} in ${describeLog(config)}: register it first`);
      deployment = await useDeployment(
        log,
        config,
        { processors: optimizationNeeds, workers: hasDspyStages(program) },
        options,
      );
      if (deployment.started.length > 0)
        note(`dspex optimize: started here: ${deployment.started.join(", ")}`);
      if (deployment.used.length > 0) note(`dspex optimize: using the running ${deployment.used.join(", ")}`);
      const hinted = hintsUsed(program.hints, options);
      if (hinted.length > 0) note(`dspex optimize: from the program's hints: ${hinted.join(", ")}`);
      const optimizationId = options.id ?? newId();
      const followed = followOptimization(log, optimizationId, (p) =>
        progress.update(
          `trial ${p.trial + 1}/${p.plannedTrials} | ${p.phase} ${p.score.toFixed(3)} | best dev ${p.bestScore.toFixed(3)} | calls ${p.calls}/${p.plannedCalls}`,
        ),
      );
      await appendEvents(log, [
        optimizationRequested({
          optimizationId,
          programId,
          optimizer: options.optimizer,
          variables: options.variables ?? [],
          trainset: options.trainset,
          devset: options.devset,
          metric: { name: options.metric, field: options.field, params: {} },
          budget: { maxTrials: options.maxTrials, maxCalls: options.maxCalls },
          seed: options.seed,
          params: options.params,
          priority: options.priority,
        }),
      ]);
      const result = await deployment.guard(followed);
      progress.stop();
      console.log(
        `optimization ${result.optimizationId}: dev score ${result.baselineScore.toFixed(3)} → ${result.candidateScore.toFixed(3)}` +
          ` (${result.accepted ? "adopted" : "not adopted"}), ${result.trials} trials, ${result.calls} LM calls`,
      );
      if (result.accepted) console.log(JSON.stringify(result.bestConfig, null, 2));
    } finally {
      progress.stop();
      await deployment?.stop();
      await log.close();
    }
  });
