import { Command } from "commander";
import { startEvaluations, streamEvaluator } from "../../processors/optimizers/stream.ts";
import { startPipeline } from "../../processors/pipeline/pipeline.ts";
import { newId } from "../../streams/ids.ts";
import { jsonObject } from "../arguments.ts";
import { openCommandLog, withLogOptions } from "../log.ts";
import { readExamples } from "./optimize.ts";

export const evaluateCommand = withLogOptions(new Command("evaluate"))
  .description(
    "evaluate a program on examples: a fan-out of executions, scored by a metric, failures included",
  )
  .argument("<programId>", "the registered program")
  .requiredOption("--dataset <file>", "examples (JSONL: {id?, inputs, expected})", readExamples)
  .option("--metric <name>", "exact_match, f1, contains, numeric, or a registered one", "exact_match")
  .option("--field <name>", "the output field the metric compares")
  .option("--overrides <json>", "variable values for this evaluation only", jsonObject, {})
  .option("--concurrency <n>", "executions in flight at most", Number, 4)
  .option("--failure-score <n>", "what a failed example scores", Number, 0)
  .option("--with-pipeline", "also run the pipeline in this process (embedded log, no daemon)")
  .option("--json", "print the per-example results as JSON")
  .action(async (programId: string, options) => {
    const { log } = await openCommandLog(options);
    const evaluations = startEvaluations(log);
    const pipeline = options.withPipeline ? startPipeline(log) : undefined;
    try {
      await Promise.all([evaluations.ready, pipeline?.ready]);
      const outcome = await streamEvaluator(log).evaluate({
        evaluationId: newId(),
        programId,
        overrides: options.overrides,
        examples: options.dataset,
        metric: { name: options.metric, field: options.field, params: {} },
        concurrency: options.concurrency,
        failureScore: options.failureScore,
      });
      if (options.json) return console.log(JSON.stringify(outcome, null, 2));
      console.log(
        `evaluation ${outcome.evaluationId}: score ${outcome.score.toFixed(3)} on ${outcome.results.length} examples, ` +
          `${outcome.errors} failed, ${outcome.usage.calls} LM calls`,
      );
      for (const r of outcome.results)
        console.log(`  ${r.exampleId.padEnd(24)} ${r.score.toFixed(3)}${r.error ? `  ${r.error}` : ""}`);
    } finally {
      await pipeline?.stop();
      await evaluations.stop();
      await log.close();
    }
  });
