import { Command } from "commander";
import { describeLog, type LogOptions, openConfiguredLog } from "../../app/log.ts";
import { useDeployment } from "../../app/services.ts";
import { nativeOps } from "../../processors/native/index.ts";
import { readRegistry } from "../../programs/register.ts";
import { createClient } from "../../streams/client.ts";
import type { ProgramDefinition } from "../../streams/events/index.ts";
import { positiveInteger } from "../arguments.ts";
import { withLogOptions } from "../log.ts";
import { type RequestOptions, requestOf, withRequestOptions } from "../request.ts";

const note = (text: string) => process.stderr.write(`${text}\n`);
const native: ReadonlySet<string> = new Set(nativeOps);

/** Whether some stage of the program runs in Python (so workers must take its steps). */
export const hasDspyStages = (program: ProgramDefinition): boolean =>
  program.stages.some((stage) => !native.has(stage.module));

interface RunOptions extends RequestOptions, LogOptions {
  local?: boolean;
  workers?: number;
}

/**
 * One request, its result printed. What the request needs (the pipeline, Python workers when the program
 * has DSPy stages) is used where it already runs on the log, and started in this process where it does not.
 */
export const runCommand = withLogOptions(withRequestOptions(new Command("run")))
  .description("run one request of a registered program and print its result")
  .option("--local", "run the pipeline and Python workers in this process, whatever else runs")
  .option("--no-local", "only publish and wait: processors and workers already run elsewhere")
  .option(
    "--workers <n>",
    "Python workers when this process starts them (default: config python.workers)",
    positiveInteger,
  )
  .action(async (programId: string, options: RunOptions) => {
    const { log, config } = await openConfiguredLog(options);
    let deployment: Awaited<ReturnType<typeof useDeployment>> | undefined;
    try {
      const program = (await readRegistry(log)).programs.get(programId);
      if (!program)
        throw new Error(
          `no program ${programId} in ${describeLog(config)}: register it first (\`dspex demo\` registers support-triage)`,
        );
      const started = Date.now();
      deployment = await useDeployment(
        log,
        config,
        { processors: ["pipeline"], workers: hasDspyStages(program) },
        options,
      );
      if (deployment.started.length > 0)
        note(
          `dspex run: started ${deployment.started.join(", ")} on ${describeLog(config)} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      const result = await deployment
        .guard(createClient(log).execute(requestOf(programId, options), { timeoutMs: options.timeout }))
        .catch((error: Error) => {
          if (error.name !== "TimeoutError") throw error;
          throw new Error(
            `no result within ${options.timeout} ms: are \`dspex processors\` and \`dspex workers\` running on ${describeLog(config)}?`,
          );
        });
      console.log(JSON.stringify({ type: result.type, ...result.data }, null, 2));
      if (result.type !== "ExecutionCompleted") process.exitCode = 1;
    } finally {
      await deployment?.stop();
      await log.close();
    }
  });
