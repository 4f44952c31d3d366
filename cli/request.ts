import { type Command, InvalidArgumentError } from "commander";
import type { ExecutionPolicy, JsonRecord } from "../streams/events/index.ts";
import { jsonObject, positiveNumber } from "./arguments.ts";

/** `field=value`: the value as JSON when it parses, else as a string. */
export const assignment = (text: string, previous: JsonRecord = {}): JsonRecord => {
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

export interface RequestOptions {
  input?: JsonRecord;
  inputs?: JsonRecord;
  override?: JsonRecord;
  policy?: JsonRecord;
  session?: string;
  requestId?: string;
  timeout: number;
}

/** The options of a command that sends one ExecutionRequested (publish, run). */
export const withRequestOptions = (command: Command): Command =>
  command
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
    .option("--timeout <ms>", "how long to wait for the result", positiveNumber, 120_000);

export const requestOf = (programId: string, options: RequestOptions) => ({
  programId,
  inputs: { ...options.inputs, ...options.input },
  requestId: options.requestId,
  sessionId: options.session,
  overrides: options.override ?? {},
  policy: (options.policy ?? {}) as ExecutionPolicy,
});
