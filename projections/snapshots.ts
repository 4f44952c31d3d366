import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** A runner's saved state: where it was in the log (next offset per topic/partition) and every entity. */
export interface Snapshot {
  runner: string;
  /** `projection name → version`: a snapshot of other versions is ignored. */
  versions: Record<string, number>;
  positions: Record<string, number>;
  events: number;
  states: Record<string, [string, unknown][]>;
  takenAt: string;
}

export interface SnapshotStore {
  load(runner: string): Promise<Snapshot | undefined>;
  save(snapshot: Snapshot): Promise<void>;
}

export const memorySnapshotStore = (): SnapshotStore & { saved: Snapshot[] } => {
  const latest = new Map<string, string>();
  const saved: Snapshot[] = [];
  return {
    saved,
    async load(runner) {
      const text = latest.get(runner);
      return text === undefined ? undefined : (JSON.parse(text) as Snapshot);
    },
    async save(snapshot) {
      latest.set(snapshot.runner, JSON.stringify(snapshot));
      saved.push(snapshot);
    },
  };
};

/** One JSON file per runner in `folder`, replaced atomically (write, then rename). */
export const fileSnapshotStore = (folder: string): SnapshotStore => {
  const fileOf = (runner: string) => join(folder, `${runner.replace(/[^A-Za-z0-9_.-]/g, "_")}.snapshot.json`);
  return {
    async load(runner) {
      try {
        return JSON.parse(readFileSync(fileOf(runner), "utf8")) as Snapshot;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      }
    },
    async save(snapshot) {
      const file = fileOf(snapshot.runner);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(`${file}.tmp`, JSON.stringify(snapshot));
      renameSync(`${file}.tmp`, file);
    },
  };
};
