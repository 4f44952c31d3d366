import { Command, InvalidArgumentError } from "commander";
import { describeLog, openConfiguredLog } from "../../app/log.ts";
import { startUi } from "../../app/ui/server.ts";
import { withLogOptions } from "../log.ts";

const port = (text: string): number => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65_535)
    throw new InvalidArgumentError("expected a port number (0 for any free one)");
  return value;
};

export const uiCommand = withLogOptions(new Command("ui"))
  .description(
    "a web page over the log, live: executions with their stage timelines and LM calls, optimizations with their trajectory, the variable registry, dead letters",
  )
  .option("--port <port>", "the port to serve on (0: any free one)", port, 4319)
  .option("--host <address>", "the address to serve on", "127.0.0.1")
  .option("--allow-remote", "serve on an address other than loopback (the page shows prompts and outputs)")
  .action(async (options) => {
    const { log, config } = await openConfiguredLog(options);
    const ui = await startUi({
      log,
      host: options.host,
      port: options.port,
      allowRemote: options.allowRemote,
    }).catch(async (error: NodeJS.ErrnoException) => {
      await log.close();
      if (error.code === "EADDRINUSE")
        throw new Error(
          `port ${options.port} is taken: pass --port <another> (or --port 0 for any free one)`,
        );
      throw error;
    });
    console.log(`dspex ui on ${describeLog(config)}: ${ui.url}  (Ctrl-C stops it)`);
    await new Promise<void>((stop) => {
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    await ui.close();
    await log.close();
  });
