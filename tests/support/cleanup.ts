/**
 * What a test file made and must not leave behind: temporary folders and child processes. A setup file
 * (tests/support/setup.ts) removes them after each file, whatever happened; tests/global-setup.ts checks,
 * after the whole run, that no `dspex-*` folder and no child of ours is left.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const folders = new Set<string>();
const children = new Set<ChildProcess>();
const hooks = new Set<() => Promise<unknown> | unknown>();

/** Something else to undo after the test file (a broker of the test's own); `remove` unregisters it. */
export const onCleanUp = (hook: () => Promise<unknown> | unknown) => {
  hooks.add(hook);
  return { remove: () => hooks.delete(hook) };
};

/** The prefix of every temporary folder the suites make (the run's check looks for it). */
export const temporaryPrefix = "dspex-";

/** A temporary folder `dspex-<purpose>-XXXXXX`, removed after the test file. */
export const temporaryFolder = (purpose: string): string => {
  const name = purpose.startsWith(temporaryPrefix) ? purpose : `${temporaryPrefix}${purpose}`;
  const folder = mkdtempSync(join(tmpdir(), name.endsWith("-") ? name : `${name}-`));
  folders.add(folder);
  return folder;
};

/** A child process killed (SIGTERM, then SIGKILL) after the test file if it still runs. */
export const trackChild = <C extends ChildProcess>(child: C): C => {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
};

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** Stops what is still running and removes the folders. */
export const cleanUp = async (): Promise<void> => {
  for (const hook of [...hooks]) await Promise.resolve(hook()).catch(() => undefined);
  hooks.clear();
  await Promise.all(
    [...children].filter(running).map(
      (child) =>
        new Promise<void>((done) => {
          const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
          child.once("exit", () => {
            clearTimeout(timer);
            done();
          });
          child.kill("SIGTERM");
        }),
    ),
  );
  children.clear();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  folders.clear();
};
