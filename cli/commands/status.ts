import { Command } from "commander";
import { describeLog, openConfiguredLog } from "../../app/log.ts";
import { foldExecutionStatus, unknownExecution } from "../../processors/pipeline/status.ts";
import { executionIdOf } from "../../streams/client.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { withLogOptions } from "../log.ts";

export const statusCommand = withLogOptions(new Command("status"))
  .description("show an execution's stages, attempts, timings and result")
  .argument("<id>", "an execution id or a request id")
  .option("--json", "print the status as JSON")
  .action(async (id: string, options) => {
    const { log, config } = await openConfiguredLog(options);
    try {
      const events = [
        ...(await readEvents(log, Topics.executions)),
        ...(await readEvents(log, Topics.results)),
      ]
        .flatMap((r) => ("event" in r ? [r.event] : []))
        .sort((a, b) => a.occurredAt.localeCompare(b.occurredAt));
      const asExecution = events.reduce(foldExecutionStatus, unknownExecution(id));
      const status =
        asExecution.status === "unknown"
          ? events.reduce(foldExecutionStatus, { ...unknownExecution(executionIdOf(id)), requestId: id })
          : asExecution;
      if (options.json) return console.log(JSON.stringify(status, null, 2));
      if (status.status === "unknown" || (status.status === "running" && !status.programId)) {
        console.error(`no execution ${id} in ${describeLog(config)}`);
        process.exitCode = 1;
        return;
      }
      const took = status.durationMs === undefined ? "" : ` in ${status.durationMs} ms`;
      console.log(
        `execution ${status.executionId} (request ${status.requestId}, program ${status.programId}): ${status.status}${took}`,
      );
      if (status.error) console.log(`  ${status.error}`);
      for (const stage of Object.values(status.stages)) {
        const timing = stage.durationMs === undefined ? "" : `  ${stage.durationMs} ms`;
        const error =
          stage.error && stage.status !== "completed" ? `  ${stage.error.kind}: ${stage.error.message}` : "";
        console.log(
          `  ${stage.stageId.padEnd(20)} ${stage.status.padEnd(10)} attempts ${stage.attempts}${timing}${error}`,
        );
      }
      if (status.outputs) console.log(`  outputs ${JSON.stringify(status.outputs)}`);
    } finally {
      await log.close();
    }
  });
