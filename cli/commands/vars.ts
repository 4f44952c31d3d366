import { Command } from "commander";
import type { DspexConfig } from "../../app/config.ts";
import { describeLog, type LogOptions, openConfiguredLog } from "../../app/log.ts";
import { useDeployment } from "../../app/services.ts";
import { breachesWith } from "../../processors/pipeline/planner.ts";
import { commandAnswered } from "../../processors/registry/registry.ts";
import { readRegistry } from "../../programs/register.ts";
import { jsonEqual } from "../../programs/variables/index.ts";
import type { VariableCommand } from "../../streams/events/index.ts";
import type { EventLog } from "../../streams/log.ts";
import { positiveInteger } from "../arguments.ts";
import { withLogOptions } from "../log.ts";

const shown = (value: unknown, width: number): string => {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
};

export const varsCommand = withLogOptions(new Command("vars"))
  .description("the variable registry: every variable's value and version, with its history")
  .argument("[prefix]", "only variables whose id starts with this (e.g. a program id)")
  .option("--json", "print the registry as JSON")
  .action(async (prefix: string | undefined, options) => {
    const { log } = await openConfiguredLog(options);
    try {
      const { variables } = await readRegistry(log);
      const chosen = [...variables.values()]
        .filter((v) => !prefix || v.variableId.startsWith(prefix))
        .sort((a, b) => a.variableId.localeCompare(b.variableId));
      if (options.json) return console.log(JSON.stringify(chosen, null, 2));
      if (chosen.length === 0)
        console.log(prefix ? `no variables starting with ${prefix}` : "no variables yet");
      for (const v of chosen) {
        const lease = v.lease ? `  (leased to ${v.lease.holder})` : "";
        console.log(`${v.variableId}  v${v.version} = ${shown(v.value, 70)}${lease}`);
        for (const change of v.history) {
          const provenance = change.optimizationId ? ` [optimization ${change.optimizationId}]` : "";
          console.log(`    v${change.version} by ${change.actor}${provenance}: ${shown(change.reason, 60)}`);
        }
      }
    } finally {
      await log.close();
    }
  });

type JsonValue = Extract<VariableCommand, { command: "set" }>["value"];

/** A value from the command line: JSON where it parses (0.3, true, [1, 2], "text"), else the text itself. */
export const commandLineValue = (text: string): JsonValue => {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

interface SetOptions extends LogOptions {
  reason: string;
  actor: string;
  local?: boolean;
  timeout: number;
}

/** Asks the registry (its processor, where it runs, or one started here) and waits for its answer. */
const askRegistry = async (
  options: SetOptions,
  ask: (log: EventLog, config: DspexConfig) => Promise<void>,
) => {
  const { log, config } = await openConfiguredLog(options);
  let deployment: Awaited<ReturnType<typeof useDeployment>> | undefined;
  try {
    deployment = await useDeployment(log, config, { processors: ["registry"], workers: false }, options);
    await ask(log, config);
  } finally {
    await deployment?.stop();
    await log.close();
  }
};

const noAnswer = (options: SetOptions, config: DspexConfig) => (error: Error) => {
  if (error.name !== "TimeoutError") throw error;
  throw new Error(
    `no answer from the registry within ${options.timeout} ms: is \`dspex processors\` running on ${describeLog(config)}?`,
  );
};

/**
 * Changes a variable the way every writer should: a command to the registry processor, which decides it
 * against the variable's state in log order. On the embedded log this process runs the processor.
 */
varsCommand.addCommand(
  new Command("set")
    .description(
      "change a variable through the registry processor; prints the change, or why it was rejected",
    )
    .argument("<variable>", "the variable's registry id (`dspex vars` lists them)")
    .argument("<value>", "JSON (0.3, true, [1, 2], '\"text\"'); anything else is taken as text")
    .option("--reason <text>", "why, kept in the variable's history", "")
    .option("--actor <name>", "who changes it", "cli")
    .option("--local", "run the registry processor in this process, whatever else runs")
    .option(
      "--no-local",
      "only publish the command: a registry processor runs elsewhere (`dspex processors`)",
    )
    .option("--timeout <ms>", "how long to wait for the registry's answer", positiveInteger, 30_000)
    .action(async (variableId: string, text: string, _options: unknown, command: Command) => {
      // The log options belong to `vars` (they may come before or after `set`).
      const options = command.optsWithGlobals<SetOptions>();
      await askRegistry(options, async (log, config) => {
        const { programs, variables } = await readRegistry(log);
        const current = variables.get(variableId);
        if (!current)
          throw new Error(`no variable ${variableId} in ${describeLog(config)}: \`dspex vars\` lists them`);
        const value = commandLineValue(text);
        if (jsonEqual(current.value, value)) {
          console.log(`${variableId}  v${current.version} = ${shown(value, 70)} already; nothing changed`);
          return;
        }
        const program = current.programId === undefined ? undefined : programs.get(current.programId);
        const values = Object.fromEntries(
          [...variables].map(([id, v]) => [id, { value: v.value as JsonValue, version: v.version }]),
        );
        const broken = program ? breachesWith(program, values, { [variableId]: value }) : [];
        if (broken.length > 0) {
          console.error(
            `${variableId}: not set: ${current.programId}'s constraints would break: ${broken.join("; ")}. Change the other variable first.`,
          );
          process.exitCode = 1;
          return;
        }
        const change = {
          command: "set" as const,
          variableId,
          value,
          actor: options.actor,
          reason: options.reason,
        };
        const answer = await commandAnswered(log, change, options.timeout).catch(noAnswer(options, config));
        if (answer.type === "VariableChanged") {
          const { version, previous } = answer.data;
          console.log(`${variableId}  v${version} = ${shown(value, 70)} (was ${shown(previous, 40)})`);
        } else if (answer.type === "VariableChangeRejected") {
          console.error(`${variableId}: rejected: ${answer.data.reason}`);
          process.exitCode = 1;
        } else console.log(`${variableId}: ${answer.type}`);
      });
    }),
);

/**
 * Takes a variable's lease from whoever holds it (an optimization that hangs, say), with a reason kept
 * in the log; the next in line gets it.
 */
varsCommand.addCommand(
  new Command("release")
    .description("release a variable's lease for its holder (an operator's action, with a reason)")
    .argument("<variable>", "the variable's registry id (`dspex vars` shows who holds it)")
    .requiredOption("--reason <text>", "why, kept with the release")
    .option("--local", "run the registry processor in this process, whatever else runs")
    .option("--no-local", "only publish the command: a registry processor runs elsewhere")
    .option("--timeout <ms>", "how long to wait for the registry's answer", positiveInteger, 30_000)
    .action(async (variableId: string, _options: unknown, command: Command) => {
      const options = command.optsWithGlobals<SetOptions>();
      await askRegistry(options, async (log, config) => {
        const current = (await readRegistry(log)).variables.get(variableId);
        if (!current)
          throw new Error(`no variable ${variableId} in ${describeLog(config)}: \`dspex vars\` lists them`);
        if (!current.lease) {
          console.log(`${variableId} is not leased; nothing to release`);
          return;
        }
        const { leaseId, holder } = current.lease;
        const answer = await commandAnswered(
          log,
          {
            command: "releaseLease",
            variableId,
            leaseId,
            reason: `released by an operator: ${options.reason}`,
          },
          options.timeout,
        ).catch(noAnswer(options, config));
        if (answer.type !== "VariableLeaseReleased") throw new Error(`${variableId}: ${answer.type}`);
        const next = current.queue[0];
        console.log(
          `${variableId}: lease of ${holder} released${next ? `; ${next.holder} holds it now` : ""}`,
        );
      });
    }),
);
