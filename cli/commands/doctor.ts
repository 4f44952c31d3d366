import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { Socket } from "node:net";
import { promisify } from "node:util";
import { Command } from "commander";
import type { DspexConfig } from "../../app/config.ts";
import { configOf, type LogOptions } from "../../app/log.ts";
import { defaultPython } from "../../processors/workers/python.ts";
import { withLogOptions } from "../log.ts";

const run = promisify(execFile);

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do when it is not ok. */
  fix?: string;
}

type Check = (config: DspexConfig) => Promise<CheckResult>;

const pythonOf = (config: DspexConfig): string | undefined => {
  const python = defaultPython(config.python.executable);
  return existsSync(python) ? python : undefined;
};

const python = async (config: DspexConfig, code: string) => {
  const executable = pythonOf(config);
  if (!executable) throw new Error("no Python environment found");
  const { stdout } = await run(executable, ["-c", code], { timeout: 60_000 });
  return stdout.trim();
};

const reachable = (hostPort: string, timeoutMs = 2000) =>
  new Promise<boolean>((done) => {
    const [host, port] = [hostPort.slice(0, hostPort.lastIndexOf(":")), Number(hostPort.split(":").pop())];
    const socket = new Socket();
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once("error", () => finish(false));
    socket.connect(port, host, () => finish(true));
  });

const setupHint = "run `bash infra/python/setup.sh` (or `npm run main`, which runs it)";

export const checks: Check[] = [
  async () => {
    const major = Number(process.versions.node.split(".")[0]);
    return {
      name: "node",
      ok: major >= 20,
      detail: `Node ${process.versions.node}`,
      fix: "install Node 20 or newer",
    };
  },
  async () => {
    try {
      const { default: Database } = await import("better-sqlite3");
      new Database(":memory:").close();
      return { name: "embedded log (better-sqlite3)", ok: true, detail: "loads" };
    } catch (error) {
      return {
        name: "embedded log (better-sqlite3)",
        ok: false,
        detail: (error as Error).message,
        fix: "run `bash infra/node.sh`; better-sqlite3 must stay on 12.x for Node 20",
      };
    }
  },
  async (config) => {
    const executable = pythonOf(config);
    if (!executable) return { name: "python", ok: false, detail: "no virtual environment", fix: setupHint };
    try {
      const version = await python(config, "import sys; print(sys.version.split()[0])");
      return { name: "python", ok: true, detail: `${executable} (Python ${version})` };
    } catch (error) {
      return { name: "python", ok: false, detail: (error as Error).message, fix: setupHint };
    }
  },
  async (config) => {
    try {
      const version = await python(config, "import dspy, dspex_consumers; print(dspy.__version__)");
      return { name: "dspy + dspex_consumers", ok: true, detail: `dspy ${version}` };
    } catch (error) {
      return { name: "dspy + dspex_consumers", ok: false, detail: firstLine(error), fix: setupHint };
    }
  },
  async (config) => {
    try {
      const path = await python(
        config,
        "from dspex_consumers.lms.offline import model_path; print(model_path())",
      );
      return { name: "offline model", ok: true, detail: path };
    } catch (error) {
      return {
        name: "offline model",
        ok: false,
        detail: firstLine(error),
        fix: "run `bash infra/python/setup.sh --offline-model`",
      };
    }
  },
  async (config) => {
    if (config.backend !== "kafka")
      return { name: "kafka broker", ok: true, detail: "not used (backend is not kafka)" };
    const results = await Promise.all(
      config.kafka.brokers.map(async (b) => [b, await reachable(b)] as const),
    );
    const down = results.filter(([, ok]) => !ok).map(([b]) => b);
    return {
      name: "kafka broker",
      ok: down.length === 0,
      detail:
        down.length === 0
          ? `reachable: ${config.kafka.brokers.join(", ")}`
          : `unreachable: ${down.join(", ")}`,
      fix: "start one with `bash infra/kafka/start.sh`, or set DSPEX_KAFKA_BROKERS to yours",
    };
  },
];

function firstLine(error: unknown): string {
  const text = (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
  return text.split("\n").filter(Boolean).at(-1) ?? text;
}

export const doctorCommand = withLogOptions(new Command("doctor"))
  .description("check node, python, dspy, the offline model and the broker, and say how to fix each")
  .action(async (options: LogOptions) => {
    const config = configOf(options);
    let failures = 0;
    for (const check of checks) {
      const result = await check(config);
      if (!result.ok) failures++;
      console.log(`${result.ok ? "ok  " : "FAIL"}  ${result.name}: ${result.detail}`);
      if (!result.ok && result.fix) console.log(`      fix: ${result.fix}`);
    }
    process.exitCode = failures === 0 ? 0 : 1;
  });
