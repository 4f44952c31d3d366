import { Command } from "commander";
import { openConfiguredLog } from "../../app/log.ts";
import { replay } from "../../app/replay.ts";
import { type AlertView, alertsOf } from "../../projections/index.ts";
import { withLogOptions } from "../log.ts";

const describeAlert = (alert: AlertView): string => {
  const series = [alert.metric, ...Object.entries(alert.labels).map(([k, v]) => `${k}=${v}`)].join(" ");
  const moved = `${alert.direction === "down" ? "fell" : "rose"} to ${alert.raisedAtValue.toFixed(3)} from ${alert.baseline.toFixed(3)} (threshold ${alert.threshold.toFixed(3)})`;
  const state = alert.clearedAt
    ? `cleared ${alert.clearedAt} at ${alert.clearedAtValue!.toFixed(3)}`
    : "OPEN";
  return `  ${alert.programId.padEnd(24)} ${series.padEnd(28)} ${moved}  raised ${alert.raisedAt}  ${state}`;
};

export const alertsCommand = withLogOptions(new Command("alerts"))
  .description("list the alerts the alerts processor raised on programs' metrics (open ones first)")
  .option("--json", "print the alerts as JSON")
  .option("--open", "only the open alerts")
  .action(async (options) => {
    const { log, config } = await openConfiguredLog(options);
    try {
      const all = alertsOf((await replay(log, { decode: "trusted" })).alerts);
      const open = all.filter((alert) => alert.clearedAt === undefined);
      const alerts = options.open ? open : all;
      if (options.json) return console.log(JSON.stringify(alerts, null, 2));
      if (all.length === 0) {
        const hint =
          config.alerts.length === 0
            ? " (no alert rules: add `alerts` to dspex.config.json, see docs/configuration.md, and run `dspex processors`)"
            : "";
        return console.log(`no alerts on this log${hint}`);
      }
      if (alerts.length === 0) return console.log(`no open alerts (${all.length} cleared)`);
      console.log(`${all.length} alerts, ${open.length} open`);
      for (const alert of alerts) console.log(describeAlert(alert));
    } finally {
      await log.close();
    }
  });
