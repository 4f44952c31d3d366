import { Command } from "commander";
import { openConfiguredLog } from "../../app/log.ts";
import { groupInputs, processorGroups } from "../../app/services.ts";
import { groupLag } from "../../streams/lag.ts";
import { Topics } from "../../streams/topics.ts";
import { withLogOptions } from "../log.ts";

const age = (ms: number) =>
  ms < 1_000 ? `${ms} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;

/**
 * How far behind each group of the deployment is: per group and topic, the records not committed yet and
 * the live members; for the pipeline, how long the oldest request has waited on the log.
 */
export const lagCommand = withLogOptions(new Command("lag"))
  .description(
    "per consumer group: what waits on the log (uncommitted records), live members, the oldest waiting request",
  )
  .option("--json", "print it as JSON")
  .action(async (options) => {
    const { log } = await openConfiguredLog(options);
    try {
      const rows = [];
      for (const [group, topics] of Object.entries(groupInputs)) {
        const lags = await groupLag(log, group, topics);
        if (lags.every((l) => l.committed === 0)) continue; // a group that never ran here
        rows.push({
          group,
          members: await log.liveMembers(group),
          topics: Object.fromEntries(
            topics.map((topic) => [
              topic,
              lags.filter((l) => l.topic === topic).reduce((sum, l) => sum + l.lag, 0),
            ]),
          ),
        });
      }
      let oldest: number | undefined;
      for (const { partition, committed, lag } of await groupLag(log, processorGroups.pipeline, [
        Topics.requests,
      ])) {
        if (lag === 0) continue;
        const [first] = await log.read(Topics.requests, { partition, fromOffset: committed, limit: 1 });
        if (first && (oldest === undefined || first.timestamp < oldest)) oldest = first.timestamp;
      }
      const waitingMs = oldest === undefined ? undefined : Math.max(0, Date.now() - oldest);
      if (options.json)
        return console.log(JSON.stringify({ groups: rows, oldestRequestWaitingMs: waitingMs }, null, 2));
      if (rows.length === 0) console.log("no consumer group has committed anything on this log yet");
      for (const { group, members, topics } of rows) {
        const behind = Object.entries(topics)
          .map(([topic, lag]) => `${topic} ${lag}`)
          .join(", ");
        console.log(`${group.padEnd(20)} ${String(members ?? "?").padStart(2)} live  behind: ${behind}`);
      }
      console.log(
        waitingMs === undefined
          ? "no request waits for the pipeline"
          : `the oldest request waiting for the pipeline was written ${age(waitingMs)} ago`,
      );
    } finally {
      await log.close();
    }
  });
