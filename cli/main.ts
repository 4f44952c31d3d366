#!/usr/bin/env -S npx tsx --max-semi-space-size=64
import { Command } from "commander";
import { alertsCommand } from "./commands/alerts.ts";
import { demoCommand } from "./commands/demo.ts";
import { doctorCommand } from "./commands/doctor.ts";
import { evaluateCommand } from "./commands/evaluate.ts";
import { lagCommand } from "./commands/lag.ts";
import { optimizeCommand } from "./commands/optimize.ts";
import { otelCommand } from "./commands/otel.ts";
import { processorsCommand } from "./commands/processors.ts";
import { publishCommand } from "./commands/publish.ts";
import { replayCommand } from "./commands/replay.ts";
import { runCommand } from "./commands/run.ts";
import { sessionsCommand } from "./commands/sessions.ts";
import { statusCommand } from "./commands/status.ts";
import { tailCommand } from "./commands/tail.ts";
import { uiCommand } from "./commands/ui.ts";
import { varsCommand } from "./commands/vars.ts";
import { workersCommand } from "./commands/workers.ts";

// `dspex tail | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

const program = new Command("dspex")
  .description("event-sourced orchestration for DSPy programs")
  .showHelpAfterError("(run with --help for usage)");

for (const command of [
  demoCommand,
  runCommand,
  publishCommand,
  tailCommand,
  statusCommand,
  sessionsCommand,
  alertsCommand,
  lagCommand,
  evaluateCommand,
  optimizeCommand,
  varsCommand,
  replayCommand,
  processorsCommand,
  workersCommand,
  otelCommand,
  doctorCommand,
  uiCommand,
]) {
  program.addCommand(command);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  console.error(`dspex: ${(error as Error).message}`);
  if (process.env.DSPEX_DEBUG) console.error((error as Error).stack);
  else console.error("(set DSPEX_DEBUG=1 for the stack trace)");
  process.exitCode = 1;
}
// A command is done when its action returns: exit even if a client library left a socket open (a Kafka
// tail unsubscribed while its consumer was still joining kept `run` and `publish --wait` alive).
process.stdout.write("", () => process.exit());
