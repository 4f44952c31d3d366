import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { optimizers } from "../../processors/optimizers/index.ts";
import { requestOptimization } from "../../processors/optimizers/runner.ts";
import { startEvaluations } from "../../processors/optimizers/stream.ts";
import { startPipeline } from "../../processors/pipeline/pipeline.ts";
import { type Example, Example as ExampleSchema } from "../../streams/events/index.ts";
import { newId } from "../../streams/ids.ts";
import { jsonObject, positiveInteger } from "../arguments.ts";
import { openCommandLog, withLogOptions } from "../log.ts";
import { progressLine } from "../progress.ts";

/** Examples from a JSONL file: one `{id?, inputs, expected}` per line; ids default to `<file>:<line>`. */
export const readExamples = (path: string): Example[] =>
  readFileSync(path, "utf8")
    .split("\n")
    .map((line, i) => ({ line: line.trim(), number: i + 1 }))
    .filter(({ line }) => line.length > 0)
    .map(({ line, number }) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new InvalidArgumentError(`${path}:${number}: not JSON`);
      }
      const parsed = ExampleSchema.safeParse({ id: `${basename(path)}:${number}`, ...(value as object) });
      if (!parsed.success)
        throw new InvalidArgumentError(`${path}:${number}: expected {id?, inputs, expected}`);
      return parsed.data;
    });

export const optimizeCommand = withLogOptions(new Command("optimize"))
  .description(
    "optimize a program's variables on a trainset, judged on a devset; the winner lands as VariableChanged",
  )
  .argument("<programId>", "the registered program")
  .addOption(
    new Option("--optimizer <name>", "the algorithm").choices(Object.keys(optimizers)).default("bootstrap"),
  )
  .requiredOption("--trainset <file>", "training examples (JSONL: {id?, inputs, expected})", readExamples)
  .requiredOption("--devset <file>", "dev examples (JSONL)", readExamples)
  .option("--metric <name>", "exact_match, f1, contains, numeric, or a registered one", "exact_match")
  .option("--field <name>", "the output field the metric compares")
  .option("--variables <ids...>", "variables to optimize (default: all of the program's)")
  .option("--max-trials <n>", "budget: search trials at most", positiveInteger)
  .option("--max-calls <n>", "budget: LM calls at most", positiveInteger)
  .option("--seed <n>", "random seed (a run is reproducible from it)", Number, 0)
  .option("--params <json>", "optimizer parameters, e.g. '{\"maxBootstrappedDemos\":4}'", jsonObject, {})
  .option("--id <optimizationId>", "resume this optimization (default: a new id)")
  .option("--with-pipeline", "also run the pipeline in this process (embedded log, no daemon)")
  .action(async (programId: string, options) => {
    const { log } = await openCommandLog(options);
    const evaluations = startEvaluations(log);
    const pipeline = options.withPipeline ? startPipeline(log) : undefined;
    const progress = progressLine(process.stderr);
    try {
      await Promise.all([evaluations.ready, pipeline?.ready]);
      // Published as an OptimizationRequested, run by the optimizer (in this process) that consumes it.
      const result = await requestOptimization(
        log,
        {
          optimizationId: options.id ?? newId(),
          programId,
          optimizer: options.optimizer,
          variables: options.variables ?? [],
          trainset: options.trainset,
          devset: options.devset,
          metric: { name: options.metric, field: options.field, params: {} },
          budget: { maxTrials: options.maxTrials, maxCalls: options.maxCalls },
          seed: options.seed,
          params: options.params,
        },
        {
          onProgress(p) {
            progress.update(
              `trial ${p.trial + 1}/${p.plannedTrials} | ${p.phase} | best ${p.bestScore.toFixed(3)} | calls ${p.calls}/${p.plannedCalls}`,
            );
          },
        },
      );
      progress.stop();
      console.log(
        `optimization ${result.optimizationId}: dev score ${result.baselineScore.toFixed(3)} → ${result.candidateScore.toFixed(3)}` +
          ` (${result.accepted ? "adopted" : "not adopted"}), ${result.trials} trials, ${result.calls} LM calls`,
      );
      if (result.accepted) console.log(JSON.stringify(result.bestConfig, null, 2));
    } finally {
      progress.stop();
      await pipeline?.stop();
      await evaluations.stop();
      await log.close();
    }
  });
