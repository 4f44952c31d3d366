import { type ChildProcess, spawn } from "node:child_process";
import { hostname } from "node:os";
import { createInterface } from "node:readline";
import { Command, InvalidArgumentError } from "commander";
import type { DspexConfig } from "../../app/config.ts";
import { describeLog, type LogOptions, openConfiguredLog } from "../../app/log.ts";
import { pythonOf, workerEnvironment } from "../../app/services.ts";
import { Topics } from "../../streams/topics.ts";
import { positiveInteger } from "../arguments.ts";
import { withLogOptions } from "../log.ts";
import { untilSignal } from "./processors.ts";

const say = (text: string) => console.log(`${new Date().toISOString().slice(11, 19)} ${text}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface WorkersOptions extends LogOptions {
  count?: number;
  group: string;
  name?: string;
  logLevel: string;
  verbose?: boolean;
  maxRestarts: number;
}

/** The arguments of one `python -m dspex_consumers --transport kafka` consumer. */
export const consumerArguments = (config: DspexConfig, worker: string, options: WorkersOptions): string[] => {
  const { kafka } = config;
  return [
    "-m",
    "dspex_consumers",
    "--transport",
    "kafka",
    "--brokers",
    kafka.brokers.join(","),
    "--group",
    options.group,
    "--namespace",
    kafka.namespace,
    "--worker",
    worker,
    "--log-level",
    options.logLevel,
    ...(kafka.ssl ? ["--ssl"] : []),
    ...(kafka.sasl
      ? [
          "--sasl-mechanism",
          kafka.sasl.mechanism,
          "--sasl-username",
          kafka.sasl.username,
          "--sasl-password-env",
          kafka.sasl.passwordEnv,
        ]
      : []),
  ];
};

/** What a consumer's log line means for the status lines; undefined: pass it on only with --verbose. */
export const readConsumerLine = (
  line: string,
): { kind: "assigned" | "revoked" | "step" | "problem" | "member"; text: string } | undefined => {
  const message = line.replace(/^\S+ \S+ dspex\.\w+ \w+ /, "");
  if (/^assigned /.test(message)) return { kind: "assigned", text: message };
  if (/^revoked /.test(message)) return { kind: "revoked", text: message };
  if (/^member of /.test(message)) return { kind: "member", text: message };
  if (/^step \S+ Step(Completed|Failed) in /.test(message)) return { kind: "step", text: message };
  if (/ (WARNING|ERROR|CRITICAL) |Traceback|Error/.test(line)) return { kind: "problem", text: line };
  return undefined;
};

/**
 * N Python consumers of dspex.steps on Kafka, supervised: each joins the consumer group (partitions are
 * shared out, and rebalanced when more join — from this process or another), a consumer that dies is
 * restarted with backoff, and SIGINT/SIGTERM stops them cleanly (each finishes its step, then leaves).
 */
export const workersCommand = withLogOptions(new Command("workers"))
  .description("start N Python consumers of the steps on Kafka (scale-out mode), until SIGINT/SIGTERM")
  .option("-n, --count <n>", "how many consumers (default: config python.workers, 2)", positiveInteger)
  .option("--group <id>", "the consumers' group (under the config's Kafka namespace)", "dspex-consumers")
  .option("--name <prefix>", "worker names are <prefix>-1, <prefix>-2, ... (default: python-<host>-<pid>)")
  .option("--log-level <level>", "the consumers' log level (DEBUG, INFO, WARNING)", "INFO")
  .option(
    "--max-restarts <n>",
    "restarts of one consumer within a minute before giving up on it",
    positiveInteger,
    5,
  )
  .option("--verbose", "pass every line the consumers log through")
  .action(async (options: WorkersOptions) => {
    const { log, config } = await openConfiguredLog(options);
    if (config.backend !== "kafka") {
      await log.close();
      throw new InvalidArgumentError(
        `workers are Kafka consumers, and the backend is ${config.backend}: pass --backend kafka (or set DSPEX_BACKEND=kafka). ` +
          "On one machine, `dspex run` and `dspex processors --stdio-workers N` run a local pool instead.",
      );
    }
    const python = pythonOf(config);
    // librdkafka looks for a topic that does not exist yet only every few minutes: create them first.
    try {
      await log.ensureTopics([{ topic: Topics.steps }, { topic: Topics.stepResults }, { topic: Topics.dlq }]);
    } finally {
      await log.close();
    }
    const count = options.count ?? config.python.workers;
    const env = workerEnvironment(count, process.env, config);
    let stopping = false;
    const steps = new Map<string, number>();
    const children = new Map<string, ChildProcess>();
    const exits: Promise<void>[] = [];

    const start = (worker: string, restarts: number[]): void => {
      const child = spawn(python, consumerArguments(config, worker, options), {
        env,
        stdio: ["ignore", "inherit", "pipe"],
      });
      children.set(worker, child);
      say(`${worker}: started (pid ${child.pid})`);
      createInterface({ input: child.stderr! }).on("line", (line) => {
        const read = readConsumerLine(line);
        if (read?.kind === "step") steps.set(worker, (steps.get(worker) ?? 0) + 1);
        else if (read?.kind === "assigned" || read?.kind === "revoked" || read?.kind === "member")
          say(`${worker}: ${read.text}`);
        else if (read?.kind === "problem" || options.verbose) process.stderr.write(`[${worker}] ${line}\n`);
      });
      exits.push(
        new Promise<void>((resolve) => {
          child.once("exit", (code, signal) => {
            resolve();
            if (stopping) {
              say(`${worker}: stopped (${signal ?? `exit ${code}`})`);
              return;
            }
            const now = Date.now();
            const recent = [...restarts.filter((at) => now - at < 60_000), now];
            if (recent.length > options.maxRestarts) {
              say(
                `${worker}: exited (${signal ?? `exit ${code}`}) ${recent.length} times within a minute; giving up on it`,
              );
              children.delete(worker);
              if (children.size === 0) {
                process.exitCode = 1;
                process.kill(process.pid, "SIGTERM");
              }
              return;
            }
            const wait = Math.min(30_000, 1_000 * 2 ** (recent.length - 1));
            say(`${worker}: exited (${signal ?? `exit ${code}`}); restarting in ${wait / 1000} s`);
            void sleep(wait).then(() => {
              if (!stopping) start(worker, recent);
            });
          });
        }),
      );
    };

    say(
      `starting ${count} Python consumer${count > 1 ? "s" : ""} of ${config.kafka.namespace}${Topics.steps} in group ${config.kafka.namespace}${options.group} on ${describeLog(config)}`,
    );
    const prefix = options.name ?? `python-${hostname()}-${process.pid}`;
    for (let i = 1; i <= count; i++) start(`${prefix}-${i}`, []);
    let shown = "";
    const status = setInterval(() => {
      const total = [...steps.values()].reduce((a, b) => a + b, 0);
      const line = `steps done: ${total} (${[...children.keys()].map((w) => `${w} ${steps.get(w) ?? 0}`).join(", ")})`;
      if (total > 0 && line !== shown) say(line);
      shown = line;
    }, 5_000);
    const signal = await untilSignal();
    stopping = true;
    clearInterval(status);
    say(
      `${signal}: stopping ${children.size} consumer${children.size === 1 ? "" : "s"} (each finishes its step, then leaves the group)`,
    );
    for (const child of children.values()) child.kill("SIGTERM");
    const force = setTimeout(() => {
      for (const child of children.values()) if (child.exitCode === null) child.kill("SIGKILL");
    }, 30_000);
    await Promise.all(exits);
    clearTimeout(force);
    const total = [...steps.values()].reduce((a, b) => a + b, 0);
    say(`stopped; ${total} steps done`);
  });
