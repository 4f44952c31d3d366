import { Command, InvalidArgumentError } from "commander";
import { createClient } from "../../streams/client.ts";
import type { ExecutionPolicy, JsonRecord } from "../../streams/events/index.ts";
import { jsonObject, positiveNumber } from "../arguments.ts";
import { describeLog, openCommandLog, withLogOptions } from "../log.ts";

/** `field=value`: the value as JSON when it parses, else as a string. */
const assignment = (text: string, previous: JsonRecord = {}): JsonRecord => {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`expected field=value, got ${JSON.stringify(text)}`);
  const raw = text.slice(eq + 1);
  let value: JsonRecord[string];
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  return { ...previous, [text.slice(0, eq)]: value };
};

export const publishCommand = withLogOptions(new Command("publish"))
  .description("publish an ExecutionRequested for a program; with --wait, print its result")
  .argument("<programId>", "the registered program to run")
  .option("-i, --input <field=value>", "an input field (repeatable; JSON values allowed)", assignment)
  .option("--inputs <json>", "all inputs as one JSON object", jsonObject)
  .option(
    "-o, --override <variable=value>",
    "a variable override for this execution only (repeatable)",
    assignment,
  )
  .option("--policy <json>", 'execution policy, e.g. {"onError":"continue","maxRetries":1}', jsonObject)
  .option("--session <id>", "session id: the affinity key of every step")
  .option("--request-id <id>", "the request id (reuse it to make publishing idempotent)")
  .option("-w, --wait", "wait for the result and print it")
  .option("--timeout <ms>", "how long --wait waits", positiveNumber, 120_000)
  .action(async (programId: string, options) => {
    const { log, config } = await openCommandLog(options);
    try {
      const client = createClient(log);
      const draft = {
        programId,
        inputs: { ...options.inputs, ...options.input },
        requestId: options.requestId,
        sessionId: options.session,
        overrides: options.override ?? {},
        policy: (options.policy ?? {}) as ExecutionPolicy,
      };
      if (!options.wait) {
        const { requestId, executionId } = await client.publish(draft);
        console.log(JSON.stringify({ requestId, executionId }));
        return;
      }
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
