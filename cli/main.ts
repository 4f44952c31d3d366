#!/usr/bin/env -S npx tsx
import { Command } from "commander";
import { demoCommand } from "./commands/demo.ts";
import { doctorCommand } from "./commands/doctor.ts";
import { evaluateCommand } from "./commands/evaluate.ts";
import { optimizeCommand } from "./commands/optimize.ts";
import { publishCommand } from "./commands/publish.ts";
import { statusCommand } from "./commands/status.ts";
import { tailCommand } from "./commands/tail.ts";

// `dspex tail | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

const program = new Command("dspex")
  .description("event-sourced orchestration for DSPy programs")
  .showHelpAfterError("(run with --help for usage)");

program.addCommand(demoCommand);
program.addCommand(doctorCommand);
program.addCommand(publishCommand);
program.addCommand(tailCommand);
program.addCommand(statusCommand);
program.addCommand(evaluateCommand);
program.addCommand(optimizeCommand);

await program.parseAsync(process.argv);
