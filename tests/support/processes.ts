import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { trackChild } from "./cleanup.ts";

export const root = new URL("../..", import.meta.url).pathname;

/**
 * Node itself with tsx's loader, not the `tsx` launcher: the launcher runs the script in a child node of
 * its own, and a SIGKILL sent to the launcher would leave that child running.
 */
export const typescriptNode = (script: string, args: string[]) =>
  [process.execPath, ["--import", "tsx", script, ...args]] as const;

/** Runs a TypeScript file in a real child process; `lines` collects its stdout lines. */
export const spawnTs = (script: string, args: string[]) => {
  const child = trackChild(
    spawn(...typescriptNode(script, args), { cwd: root, stdio: ["ignore", "pipe", "inherit"] }),
  );
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    for (const wake of waiters.splice(0)) wake();
  });
  const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
  const waitFor = async (predicate: (lines: string[]) => boolean, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(lines)) {
      if (Date.now() > deadline)
        throw new Error(`child ${script} did not get there; output: ${lines.join("\n")}`);
      await new Promise<void>((wake) => {
        waiters.push(wake);
        setTimeout(wake, 200);
      });
    }
  };
  return { child, lines, exited, waitFor };
};

export const killHard = async (child: ChildProcess) => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.on("exit", done));
  child.kill("SIGKILL");
  await exited;
};
