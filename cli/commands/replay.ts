import { Command } from "commander";
import { openConfiguredLog } from "../../app/log.ts";
import { replay } from "../../app/replay.ts";
import { stateHash } from "../../projections/index.ts";
import { withLogOptions } from "../log.ts";

export const replayCommand = withLogOptions(new Command("replay"))
  .description("rebuild every projection from the log; print each state's hash and the replay rate")
  .action(async (options) => {
    const { log } = await openConfiguredLog(options);
    try {
      const replayed = await replay(log);
      for (const name of ["variables", "executions", "sessions", "metrics"] as const) {
        const state = replayed[name];
        console.log(
          `${name.padEnd(12)} ${String(state.size).padStart(7)} entities  ${stateHash([...state])}`,
        );
      }
      const { events, seconds } = replayed;
      const rate = seconds > 0 ? Math.round(events / seconds) : events;
      console.log(`replayed ${events} events in ${seconds.toFixed(2)} s (${rate} events/s)`);
    } finally {
      await log.close();
    }
  });
