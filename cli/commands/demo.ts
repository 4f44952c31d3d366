import { Command } from "commander";
import { exampleEvents } from "../../streams/examples.ts";
import { appendEvents, readEvents } from "../../streams/store.ts";
import { allTopics } from "../../streams/topics.ts";
import { describeLog, type LogOptions, openCommandLog, withLogOptions } from "../log.ts";

/** The main job. For now: append the catalog's example events to the embedded log and replay them. */
export const demoCommand = withLogOptions(new Command("demo"))
  .description("run the main job on the embedded log (no services needed)")
  .action(async (options: LogOptions) => {
    const { log, config } = await openCommandLog(options);
    try {
      const events = exampleEvents();
      await appendEvents(log, events);
      console.log(`appended ${events.length} events to ${describeLog(config)}; replaying:`);
      for (const topic of allTopics) {
        for (const result of await readEvents(log, topic)) {
          const { record } = result;
          const what = "event" in result ? result.event.type : `undecodable: ${result.error}`;
          console.log(`  ${record.topic}[${record.partition}]@${record.offset}  key=${record.key}  ${what}`);
        }
      }
    } finally {
      await log.close();
    }
  });
