/**
 * What a test run left behind: `dspex-*` folders in the temp dir made during the run, and processes of
 * ours (Python consumers, dspex commands, test children, brokers of a test) started during it. The test
 * command fails when there are any (tests/global-setup.ts), after removing them.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { temporaryPrefix } from "./cleanup.ts";

/** Command lines of processes only our tests start. */
const ours = [
  /dspex_consumers/,
  /cli\/main\.ts/,
  /tests\/support\/.*-child\.ts/,
  /kafka\.Kafka .*dspex-own-kafka-/,
  /dspex-kafka-cluster-/,
];

export interface Leftovers {
  folders: string[];
  processes: string[];
}

export const findLeftovers = (since: number, exclude: ReadonlySet<number> = new Set()): Leftovers => {
  const folders = readdirSync(tmpdir())
    .filter((name) => name.startsWith(temporaryPrefix))
    .map((name) => join(tmpdir(), name))
    .filter((path) => {
      try {
        return statSync(path).birthtimeMs >= since || statSync(path).ctimeMs >= since;
      } catch {
        return false;
      }
    });
  const runSeconds = (Date.now() - since) / 1000;
  const processes = execFileSync("ps", ["-eo", "pid=,etimes=,args="], { encoding: "utf8" })
    .split("\n")
    .map((line) => line.trim().match(/^(\d+)\s+(\d+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null)
    .filter(
      ([, pid, age, args]) =>
        Number(age) < runSeconds && !exclude.has(Number(pid)) && ours.some((re) => re.test(args!)),
    )
    .map(([, pid, , args]) => `${pid} ${args!.slice(0, 160)}`);
  return { folders, processes };
};

export const removeLeftovers = ({ folders, processes }: Leftovers): void => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  for (const line of processes) {
    try {
      process.kill(Number(line.split(" ")[0]), "SIGKILL");
    } catch {
      // gone already
    }
  }
};
