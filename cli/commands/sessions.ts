import { Command } from "commander";
import { openConfiguredLog } from "../../app/log.ts";
import { replay } from "../../app/replay.ts";
import { averageDurationMs, sessionsOf } from "../../projections/index.ts";
import { withLogOptions } from "../log.ts";

export const sessionsCommand = withLogOptions(new Command("sessions"))
  .description(
    "list sessions (requests' sessionId): executions, outcomes, last activity, and whether they expired",
  )
  .option("--json", "print the sessions as JSON")
  .action(async (options) => {
    const { log, config } = await openConfiguredLog(options);
    try {
      const sessions = sessionsOf((await replay(log, { decode: "trusted" })).sessions).sort((a, b) =>
        b.lastActivityAt.localeCompare(a.lastActivityAt),
      );
      if (options.json) return console.log(JSON.stringify(sessions, null, 2));
      if (sessions.length === 0) return console.log("no sessions on this log yet");
      const ttl = config.sessions.ttlMs > 0 ? `${config.sessions.ttlMs / 1000} s` : "none";
      console.log(`${sessions.length} sessions (time to live without a request: ${ttl})`);
      for (const session of sessions) {
        const state = session.expiredAt ? `expired ${session.expiredAt}` : "active";
        console.log(
          `  ${session.sessionId.padEnd(36)} ${String(session.started).padStart(5)} executions (${session.completed} completed, ${session.failed} failed, ${Math.round(averageDurationMs(session))} ms on average)  last ${session.lastActivityAt}  ${state}`,
        );
        const measured = Object.entries(session.recorded).map(
          ([name, { count, sum }]) => `${name} ${(sum / count).toFixed(3)} (mean of ${count})`,
        );
        if (measured.length > 0) console.log(`  ${"".padEnd(36)} measured: ${measured.join(", ")}`);
      }
    } finally {
      await log.close();
    }
  });
