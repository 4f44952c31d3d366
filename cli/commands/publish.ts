import { Command } from "commander";
import { describeLog, type LogOptions, openConfiguredLog } from "../../app/log.ts";
import { processorGroups } from "../../app/services.ts";
import { createClient } from "../../streams/client.ts";
import { withLogOptions } from "../log.ts";
import { type RequestOptions, requestOf, withRequestOptions } from "../request.ts";

export const publishCommand = withLogOptions(withRequestOptions(new Command("publish")))
  .description("publish an ExecutionRequested for a program; with --wait, print its result")
  .option("-w, --wait", "wait for the result and print it")
  .action(async (programId: string, options: RequestOptions & LogOptions & { wait?: boolean }) => {
    const { log, config } = await openConfiguredLog(options);
    try {
      const client = createClient(log);
      const draft = requestOf(programId, options);
      if (!options.wait) {
        const { requestId, executionId } = await client.publish(draft);
        console.log(JSON.stringify({ requestId, executionId }));
        return;
      }
      // Fail fast, where the log can tell, when nothing would answer.
      if ((await log.liveMembers(processorGroups.pipeline)) === 0)
        throw new Error(
          `no pipeline runs on ${describeLog(config)}: start \`dspex processors\` (and \`dspex workers\`), or use \`dspex run\`, which starts what is missing`,
        );
      const result = await client.execute(draft, { timeoutMs: options.timeout }).catch((error: Error) => {
        throw new Error(
          error.name === "TimeoutError"
            ? `no result within ${options.timeout} ms: is a pipeline running on ${describeLog(config)}?`
            : error.message,
        );
      });
      console.log(JSON.stringify({ type: result.type, ...result.data }, null, 2));
      if (result.type !== "ExecutionCompleted") process.exitCode = 1;
    } finally {
      await log.close();
    }
  });
