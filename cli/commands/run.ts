import { Command } from "commander";
import { nativeOps } from "../../processors/native/index.ts";
import { readRegistry } from "../../programs/register.ts";
import { createClient } from "../../streams/client.ts";
import { positiveInteger } from "../arguments.ts";
import { describeLog, type LogOptions, openCommandLog, withLogOptions } from "../log.ts";
import { type RequestOptions, requestOf, withRequestOptions } from "../request.ts";
import { startLocalWorkers, startProcessors } from "../services.ts";

const note = (text: string) => process.stderr.write(`${text}\n`);
const native: ReadonlySet<string> = new Set(nativeOps);

interface RunOptions extends RequestOptions, LogOptions {
  local?: boolean;
  workers?: number;
}

/**
 * One request, its result printed. On the embedded log (or with --local) this process runs what the
 * request needs: the pipeline, and a pool of Python workers when the program has DSPy stages. On Kafka
 * or EventStoreDB it talks to the deployment already running there (`dspex processors`, `dspex workers`).
 */
export const runCommand = withLogOptions(withRequestOptions(new Command("run")))
  .description("run one request of a registered program and print its result")
  .option("--local", "run the pipeline and Python workers in this process (default on the embedded log)")
  .option("--no-local", "only publish and wait: processors and workers already run elsewhere")
  .option(
    "--workers <n>",
    "Python workers when running locally (default: config python.workers)",
    positiveInteger,
  )
  .action(async (programId: string, options: RunOptions) => {
    const { log, config } = await openCommandLog(options);
    const local = options.local ?? config.backend === "embedded";
    let processors: ReturnType<typeof startProcessors> | undefined;
    let workers: ReturnType<typeof startLocalWorkers> | undefined;
    try {
      const program = (await readRegistry(log)).programs.get(programId);
      if (!program)
        throw new Error(
          `no program ${programId} in ${describeLog(config)}: register it first (\`dspex demo\` registers support-triage)`,
        );
      if (local) {
        const started = Date.now();
        const needsPython = program.stages.some((stage) => !native.has(stage.module));
        processors = startProcessors(log);
        if (needsPython) workers = startLocalWorkers(log, config, options.workers);
        note(
          `dspex run: starting the pipeline${needsPython ? ` and ${options.workers ?? config.python.workers} Python workers` : ""} on ${describeLog(config)}`,
        );
        await processors.guard(Promise.all([processors.ready(), workers?.ready()]));
        note(`dspex run: ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
      const execution = createClient(log).execute(requestOf(programId, options), {
        timeoutMs: options.timeout,
      });
      const result = await (processors ? processors.guard(execution) : execution).catch((error: Error) => {
        if (error.name !== "TimeoutError") throw error;
        throw new Error(
          local
            ? `no result within ${options.timeout} ms`
            : `no result within ${options.timeout} ms: are \`dspex processors\` and \`dspex workers\` running on ${describeLog(config)}? (or pass --local)`,
        );
      });
      console.log(JSON.stringify({ type: result.type, ...result.data }, null, 2));
      if (result.type !== "ExecutionCompleted") process.exitCode = 1;
    } finally {
      await processors?.stop();
      await workers?.stop();
      await log.close();
    }
  });
