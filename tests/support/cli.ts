import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { trackChild } from "./cleanup.ts";
import { root, typescriptNode } from "./processes.ts";

const cli = new URL("../../cli/main.ts", import.meta.url).pathname;

/** A `dspex` command in a process of its own; `lines` collects what it prints. */
export const dspex = (args: string[], env: NodeJS.ProcessEnv) => {
  const child = trackChild(
    spawn(...typescriptNode(cli, args), { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] }),
  );
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => lines.push(line));
  const errors: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (line) => errors.push(line));
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  const waitFor = async (pattern: RegExp, timeoutMs = 90_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!lines.some((line) => pattern.test(line))) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`dspex ${args[0]} exited: ${[...lines, ...errors].join("\n")}`);
      if (Date.now() > deadline)
        throw new Error(
          `dspex ${args[0]} printed no ${pattern} within ${timeoutMs} ms:\n${[...lines, ...errors].join("\n")}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  return { child, lines, errors, exited, waitFor };
};
export type DspexChild = ReturnType<typeof dspex>;

/** SIGTERM, then SIGKILL if it has not exited within 30 s; resolves with the exit code. */
export const stopChild = async (child: ChildProcess): Promise<number | null> => {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
};
