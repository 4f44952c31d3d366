/**
 * The process the crash test kills (tests/integration/kafka-transactions.test.ts): a consumer-group
 * member that turns each input into an output with commitWith (one Kafka transaction), and stops dead
 * once a transaction has its outputs and offsets sent but not committed, printing a line the test waits for.
 */
import type { KafkaLogConfig } from "../../streams/kafka/config.ts";
import { openKafkaLog } from "../../streams/kafka/log.ts";

const [configJson, argsJson] = process.argv.slice(2);
const config = JSON.parse(configJson!) as KafkaLogConfig;
const { input, output, group } = JSON.parse(argsJson!) as { input: string; output: string; group: string };

const log = await openKafkaLog(config, {
  beforeTransactionCommit: async () => {
    process.stdout.write("produced, not committed\n");
    await new Promise(() => undefined);
  },
});
log.consume({ group, topics: [input], autoCommit: false }, async (batch) => {
  await batch.commitWith(
    batch.records.map((r) => ({ topic: output, key: r.key, value: `out-${r.value.toString()}` })),
  );
});
