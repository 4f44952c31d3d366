import { Command } from "commander";
import {
  executionsProjection,
  metricsProjection,
  projectionRunner,
  sessionsProjection,
  stateHash,
  variablesProjection,
} from "../../projections/index.ts";
import { openCommandLog, withLogOptions } from "../log.ts";

const projections = [variablesProjection, executionsProjection, sessionsProjection, metricsProjection];

export const replayCommand = withLogOptions(new Command("replay"))
  .description("rebuild every projection from the log; print each state's hash and the replay rate")
  .action(async (options) => {
    const { log } = await openCommandLog(options);
    try {
      const runner = projectionRunner({ name: "cli-replay", log, projections, decode: "validated" });
      const started = process.hrtime.bigint();
      const events = await runner.rebuild();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      for (const projection of projections) {
        const state = runner.state(projection.name);
        console.log(
          `${projection.name.padEnd(12)} ${String(state.size).padStart(7)} entities  ${stateHash([...state])}`,
        );
      }
      const rate = seconds > 0 ? Math.round(events / seconds) : events;
      console.log(`replayed ${events} events in ${seconds.toFixed(2)} s (${rate} events/s)`);
    } finally {
      await log.close();
    }
  });
