import { Command } from "commander";
import { readRegistry } from "../../programs/register.ts";
import { openCommandLog, withLogOptions } from "../log.ts";

const shown = (value: unknown, width: number): string => {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
};

export const varsCommand = withLogOptions(new Command("vars"))
  .description("the variable registry: every variable's value and version, with its history")
  .argument("[prefix]", "only variables whose id starts with this (e.g. a program id)")
  .option("--json", "print the registry as JSON")
  .action(async (prefix: string | undefined, options) => {
    const { log } = await openCommandLog(options);
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
