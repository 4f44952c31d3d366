/**
 * Register a program, run dspex in this process, follow one request's progress and print its result.
 *
 *   npx tsx examples/publish-subscribe.ts
 *
 * The log is the embedded one (.dspex/log.db) unless DSPEX_BACKEND / DSPEX_LOG_PATH / dspex.config.json
 * say otherwise; the model is the configured one (DSPEX_MODEL, default the offline model).
 */
import { randomUUID } from "node:crypto";
import { connect, dspy, program, startProcessors, startWorkers, v } from "dspex";

const dspex = await connect();
// Registering declares the program's variables too; the returned definition knows its output types.
const triage = await dspex.register(
  program("example-triage")
    .input("message: str")
    .variable("model", v.model([dspex.config.lm.model]))
    .stage("classify", dspy.predict("message -> category: Literal['billing', 'shipping', 'technical']")),
);

const processors = startProcessors(dspex, { only: ["pipeline"] });
const workers = startWorkers(dspex, { workers: 1 });
try {
  await Promise.all([processors.ready(), workers.ready()]);
  const requestId = randomUUID();
  // Subscriptions start at the end of the log: subscribe first, then publish.
  const progress = dspex.progress$(requestId).subscribe((event) => {
    console.log(`progress: ${event.type}${"stageId" in event.data ? ` ${event.data.stageId}` : ""}`);
  });
  const result = await dspex.execute({
    requestId,
    program: triage,
    inputs: { message: "I was charged twice for my order" },
  });
  progress.unsubscribe();
  if (result.type !== "ExecutionCompleted") throw new Error(`the request ended ${result.type}`);
  const category: "billing" | "shipping" | "technical" = result.data.outputs.category; // typed from the signature
  console.log(`category: ${category}`);
} finally {
  await workers.stop();
  await processors.stop();
  await dspex.close();
}
