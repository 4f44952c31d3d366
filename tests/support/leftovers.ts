/**
 * What a test run left behind. The run marks what it makes: its temporary folders go under a folder of
 * its own (TMPDIR), and every process it starts inherits DSPEX_TEST_RUN. Whatever is still there after
 * the run fails it (tests/global-setup.ts), after being removed — and another run on the same machine
 * (a second checkout, a helper's pytest) is never touched.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { temporaryPrefix } from "./cleanup.ts";

/** Command lines of processes only our tests start (the test runner's own workers carry the mark too). */
const ours = [
  /dspex_consumers/,
  /cli\/main\.ts/,
  /tests\/support\/.*-child\.ts/,
  /kafka\.Kafka /,
  /bench\/.*\.ts/,
];

/** tsx's compile cache (`$TMPDIR/tsx-<uid>`), made by every `node --import tsx` child: a tool's, not a test's. */
const toolCache = /^tsx-\d+$/;

export interface TestRun {
  id: string;
  folder: string;
}

/** Marks this process's environment, which the test workers and their children inherit. */
export const markTestRun = (): TestRun => {
  const id = randomUUID().slice(0, 8);
  const folder = join(tmpdir(), `${temporaryPrefix}test-run-${id}`);
  mkdirSync(folder);
  process.env.DSPEX_TEST_RUN = id;
  process.env.TMPDIR = folder;
  return { id, folder };
};

export interface Leftovers {
  folders: string[];
  processes: string[];
}

const environmentOf = (pid: string): string => {
  try {
    return readFileSync(`/proc/${pid}/environ`, "latin1");
  } catch {
    return "";
  }
};

const commandOf = (pid: string): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "latin1").replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
};

export const findLeftovers = (run: TestRun): Leftovers => {
  const folders = readdirSync(run.folder)
    .filter((name) => !toolCache.test(name))
    .map((name) => join(run.folder, name));
  const mark = `\0DSPEX_TEST_RUN=${run.id}\0`;
  const processes = readdirSync("/proc")
    .filter((pid) => /^\d+$/.test(pid) && Number(pid) !== process.pid)
    .filter((pid) => `\0${environmentOf(pid)}`.includes(mark))
    .map((pid) => ({ pid, command: commandOf(pid) }))
    .filter(({ command }) => ours.some((re) => re.test(command)))
    .map(({ pid, command }) => `${pid} ${command.slice(0, 160)}`);
  return { folders, processes };
};

/** Kills the leftover processes and removes the run's folder with whatever is in it. */
export const removeLeftovers = (run: TestRun, { processes }: Leftovers): void => {
  for (const line of processes) {
    try {
      process.kill(Number(line.split(" ")[0]), "SIGKILL");
    } catch {
      // gone already
    }
  }
  rmSync(run.folder, { recursive: true, force: true });
};
