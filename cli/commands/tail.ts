import { Command, InvalidArgumentError } from "commander";
import { filter, identity, take } from "rxjs";
import { openConfiguredLog } from "../../app/log.ts";
import { decodeRecord } from "../../streams/codec.ts";
import type { LogRecord } from "../../streams/log.ts";
import { allTopics } from "../../streams/topics.ts";
import { withLogOptions } from "../log.ts";

const summary = (record: LogRecord): string => {
  const decoded = decodeRecord(record);
  const where = `${record.topic}[${record.partition}]@${record.offset}`;
  if (!decoded.ok) return `${where}  undecodable: ${decoded.reason}`;
  const data = JSON.stringify(decoded.event.data);
  return `${where}  ${decoded.event.type}  key=${record.key}  ${data.length > 160 ? `${data.slice(0, 157)}...` : data}`;
};

const topicName = (name: string) => {
  const topic = name.startsWith("dspex.") ? name : `dspex.${name}`;
  if (!allTopics.includes(topic as never))
    throw new InvalidArgumentError(`unknown topic ${name}; topics: ${allTopics.join(", ")}`);
  return topic;
};

export const tailCommand = withLogOptions(new Command("tail"))
  .description("follow topics of the log live (all of them by default), one line per event")
  .argument("[topics...]", "topics, with or without the dspex. prefix")
  .option("--from <where>", "beginning or end", "end")
  .option("--type <type>", "only events of this type")
  .option("--key <key>", "only records with this key")
  .option("--json", "print whole envelopes as JSON lines")
  .option("-n, --limit <count>", "exit after this many events", Number)
  .action(async (names: string[], options) => {
    if (options.from !== "beginning" && options.from !== "end")
      throw new InvalidArgumentError("--from must be beginning or end");
    const topics = names.length > 0 ? names.map(topicName) : [...allTopics];
    const { log } = await openConfiguredLog(options);
    const events = log.tail(topics, { from: options.from }).pipe(
      filter((record) => !options.type || record.headers["dspex-type"] === options.type),
      filter((record) => !options.key || record.key === options.key),
      options.limit ? take(options.limit) : identity,
    );
    await new Promise<void>((done, fail) => {
      const subscription = events.subscribe({
        next: (record) => console.log(options.json ? record.value.toString("utf8") : summary(record)),
        error: fail,
        complete: done,
      });
      process.once("SIGINT", () => {
        subscription.unsubscribe();
        done();
      });
    });
    await log.close();
  });
