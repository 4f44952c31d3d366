/**
 * The pipeline processor as a process of its own, for tests that kill it with -9.
 *
 *   tsx tests/support/processor-child.ts '<LogConfig JSON>' '<options JSON>'
 *
 * Options: `hangMidBatch: true` (Kafka only) stops dead inside the first batch transaction that
 * admits a request, after its outputs (ExecutionStarted, StepDispatched...) and input offsets were sent
 * and before the commit, and prints "mid-batch <outputs>": the test kills it there. `intake`: the
 * pipeline's intake settings. Prints "ready" once the state is rebuilt and it
 * consumes; exits 1 with the error when the processor fails; SIGTERM stops it cleanly.
 */
import { pipelineProcessor } from "../../processors/pipeline/pipeline.ts";
import { runProcessor } from "../../processors/runtime/index.ts";
import { openKafkaLog } from "../../streams/kafka/log.ts";
import type { EventLog } from "../../streams/log.ts";
import { type LogConfig, openLog } from "../../streams/open.ts";

interface ChildOptions {
  hangMidBatch?: boolean;
  intake?: { maxInFlight?: number };
}

const [configJson, optionsJson] = process.argv.slice(2);
const config = JSON.parse(configJson!) as LogConfig;
const options = JSON.parse(optionsJson ?? "{}") as ChildOptions;

/** Outputs of admitted requests handled since the last commit (the batch now committing). */
let admittedOutputs = 0;
const hangInsideTransaction = async () => {
  const outputs = admittedOutputs;
  admittedOutputs = 0;
  if (!options.hangMidBatch || outputs === 0) return;
  process.stdout.write(`mid-batch ${outputs}\n`);
  await new Promise(() => undefined);
};

const log: EventLog =
  config.backend === "kafka"
    ? await openKafkaLog(config, { beforeTransactionCommit: hangInsideTransaction })
    : await openLog(config);
const processor = pipelineProcessor({ intake: options.intake });
const handle = processor.handle;
processor.handle = (state, event, ctx) => {
  const output = handle(state, event, ctx);
  if (event.type === "ExecutionRequested") admittedOutputs += output.emit.length;
  return output;
};
const pipeline = runProcessor(log, processor);

process.on("SIGTERM", () => {
  void pipeline
    .stop()
    .then(() => log.close())
    .finally(() => process.exit(0));
});
pipeline.done.catch((error: unknown) => {
  process.stderr.write(
    `processor-child: the pipeline failed: ${error instanceof Error ? error.stack : error}\n`,
  );
  process.exit(1);
});
await pipeline.ready;
process.stdout.write("ready\n");
