/**
 * A separate process for the contract suite: `append` writes records, `consume` reads in a group
 * without committing and prints each offset, then waits to be killed.
 */
import { openLog } from "../../streams/open.ts";

const [action, configJson, argJson] = process.argv.slice(2);
const config = JSON.parse(configJson!);
const args = JSON.parse(argJson ?? "{}");
const log = await openLog(config);

if (action === "append") {
  const { topic, prefix, count, batch } = args as {
    topic: string;
    prefix: string;
    count: number;
    batch: number;
  };
  for (let i = 0; i < count; i += batch) {
    const records = Array.from({ length: Math.min(batch, count - i) }, (_, j) => ({
      topic,
      key: `${prefix}-${(i + j) % 5}`,
      value: JSON.stringify({ writer: prefix, n: i + j }),
    }));
    await log.append(records);
  }
  await log.close();
  process.stdout.write("done\n");
} else if (action === "consume") {
  const { topic, group } = args as { topic: string; group: string };
  log.consume({ group, topics: [topic], autoCommit: false }, async (batch) => {
    for (const r of batch.records) process.stdout.write(`got ${r.partition}:${r.offset}\n`);
    await new Promise(() => undefined);
  });
}
