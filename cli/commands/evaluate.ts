import { Command } from "commander";
import { readExamples } from "../../app/examples.ts";
import { describeLog, type LogOptions, openConfiguredLog } from "../../app/log.ts";
import { useDeployment } from "../../app/services.ts";
import { streamEvaluator } from "../../processors/optimizers/stream.ts";
import { readRegistry } from "../../programs/register.ts";
import { newId } from "../../streams/ids.ts";
import { jsonObject, positiveInteger } from "../arguments.ts";
import { withLogOptions } from "../log.ts";
import { evaluationProgress } from "../progress.ts";
import { hasDspyStages } from "./run.ts";

const note = (text: string) => process.stderr.write(`${text}\n`);

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
  .option("--local", "run the processors and Python workers it needs in this process")
  .option("--no-local", "only publish and follow: a deployment runs it (`dspex processors`)")
  .option("--workers <n>", "Python workers when this process starts them", positiveInteger)
  .option("--json", "print the per-example results as JSON")
  .action(async (programId: string, options) => {
    const { log, config } = await openConfiguredLog(options as LogOptions);
    let deployment: Awaited<ReturnType<typeof useDeployment>> | undefined;
    try {
      const program = (await readRegistry(log)).programs.get(programId);
      if (!program) throw new Error(`no program ${programId} in ${describeLog(config)}: register it first`);
      deployment = await useDeployment(
        log,
        config,
        { processors: ["pipeline", "evaluation"], workers: hasDspyStages(program) },
        options,
      );
      if (deployment.started.length > 0)
        note(`dspex evaluate: started here: ${deployment.started.join(", ")}`);
      if (deployment.used.length > 0) note(`dspex evaluate: using the running ${deployment.used.join(", ")}`);
      const evaluationId = newId();
      const counting = evaluationProgress(log, evaluationId, options.dataset.length, "examples");
      const outcome = await deployment
        .guard(
          streamEvaluator(log).evaluate({
            evaluationId,
            programId,
            overrides: options.overrides,
            examples: options.dataset,
            metric: { name: options.metric, field: options.field, params: {} },
            concurrency: options.concurrency,
            failureScore: options.failureScore,
          }),
        )
        .finally(() => counting.stop());
      if (options.json) return console.log(JSON.stringify(outcome, null, 2));
      console.log(
        `evaluation ${outcome.evaluationId}: score ${outcome.score.toFixed(3)} on ${outcome.results.length} examples, ` +
          `${outcome.errors} failed, ${outcome.usage.calls} LM calls`,
      );
      for (const r of outcome.results)
        console.log(`  ${r.exampleId.padEnd(24)} ${r.score.toFixed(3)}${r.error ? `  ${r.error}` : ""}`);
    } finally {
      await deployment?.stop();
      await log.close();
    }
  });
