/**
 * `npm run bench -- memory`: what the variable registry projection holds in memory after 1M variable
 * events (DSPEX_BENCH_MEMORY_EVENTS) over 1,000 variables: the registry keeps each variable's state and
 * its last 100 changes (`historyLimit`), so memory follows the variables, not the events.
 *
 * The log is written first (in this process); a child process (node --expose-gc) then measures: RSS
 * and heapUsed after a GC with the log open, the rebuild of the variables projection, a GC, and the
 * same again while the runner (and its state) is still referenced. Figures: the deltas, the peak RSS
 * during the rebuild over the baseline, and the rebuild rate.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { historyLimit } from "../programs/registry.ts";
import { projectionRunner, variablesProjection } from "../projections/index.ts";
import { encodeEvent } from "../streams/codec.ts";
import { openEmbeddedLog } from "../streams/embedded/log.ts";
import { VariableChanged, VariableDeclared } from "../streams/events/index.ts";
import type { AppendRecord } from "../streams/log.ts";
import { report, type Suite } from "./report.ts";

const EVENTS = Number(process.env.DSPEX_BENCH_MEMORY_EVENTS ?? 1_000_000);
const VARIABLES = 1_000;
const BATCH = 5_000;
const MB = 1024 * 1024;

/** Batches of variable events: every variable declared, then changes round-robin, versions counting up. */
export function* variableEvents(count: number, variables: number): Generator<AppendRecord[]> {
  const at = "2026-01-01T00:00:00.000Z";
  const declared = encodeEvent(
    VariableDeclared.create({
      stream: "variable-v",
      key: "v",
      occurredAt: at,
      data: {
        variableId: "v",
        declaration: { name: "temperature", spec: { kind: "float", min: 0, max: 2 }, initial: 1 },
      },
    }),
  );
  const changed = encodeEvent(
    VariableChanged.create({
      stream: "variable-v",
      key: "v",
      occurredAt: at,
      data: {
        variableId: "v",
        value: 0.5,
        previous: 1,
        version: 1,
        actor: "optimizer-bench",
        reason: "trial accepted: dev score 0.81 → 0.84",
      },
    }),
  );
  let batch: AppendRecord[] = [];
  for (let i = 0; i < count; i++) {
    const template = i < variables ? declared : changed;
    const key = `bench.stage${i % variables}.temperature`;
    const id = `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;
    const value = (template.value as string)
      .replace(/"id":"[^"]+"/, `"id":"${id}"`)
      .replaceAll('"v"', `"${key}"`)
      .replace('"version":1', `"version":${Math.floor(i / variables)}`)
      .replace('"value":0.5', `"value":${((i % 200) / 100).toFixed(2)}`);
    batch.push({ ...template, key, value, headers: { ...template.headers, "dspex-id": id } });
    if (batch.length === BATCH) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

interface Measured {
  events: number;
  variables: number;
  rssDeltaMb: number;
  heapDeltaMb: number;
  peakRssDeltaMb: number;
  rebuildS: number;
}

/** In the child: baseline, rebuild, measure, with the runner still alive. */
const measureChild = async (path: string): Promise<Measured> => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with node --expose-gc");
  const log = openEmbeddedLog({ path });
  const settle = () => {
    for (let i = 0; i < 3; i++) gc();
    return process.memoryUsage();
  };
  const runner = projectionRunner({ name: "bench-memory", log, projections: [variablesProjection] });
  const before = settle();
  const peakBefore = process.resourceUsage().maxRSS * 1024;
  const start = process.hrtime.bigint();
  const events = await runner.rebuild();
  const rebuildS = Number(process.hrtime.bigint() - start) / 1e9;
  const after = settle();
  const peak = process.resourceUsage().maxRSS * 1024;
  const variables = [...runner.state("variables")].length;
  await log.close();
  return {
    events,
    variables,
    rssDeltaMb: (after.rss - before.rss) / MB,
    heapDeltaMb: (after.heapUsed - before.heapUsed) / MB,
    peakRssDeltaMb: (peak - Math.max(peakBefore, before.rss)) / MB,
    rebuildS,
  };
};

const runChild = (path: string) =>
  new Promise<Measured>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, "--expose-gc", new URL(import.meta.url).pathname, path],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split("\n").at(-1)!))
        : reject(new Error(`child exited ${code}`)),
    );
  });

export const memorySuite: Suite = {
  name: "memory",
  description: `resident memory of the variable registry projection after ${EVENTS} variable events (${VARIABLES} variables, history of ${historyLimit})`,
  async run() {
    const folder = mkdtempSync(join(tmpdir(), "dspex-bench-memory-"));
    try {
      const path = join(folder, "log.db");
      const log = openEmbeddedLog({ path });
      for (const batch of variableEvents(EVENTS, VARIABLES)) await log.append(batch);
      await log.close();
      const m = await runChild(path);
      if (m.events !== EVENTS || m.variables !== VARIABLES)
        throw new Error(`memory: replayed ${m.events} events into ${m.variables} variables`);
      const label = `registry_after_${EVENTS / 1e6}M_events`;
      report("memory", `${label}.rss_delta`, m.rssDeltaMb, "MB");
      report("memory", `${label}.heap_used_delta`, m.heapDeltaMb, "MB");
      report("memory", `${label}.peak_rss_delta`, m.peakRssDeltaMb, "MB");
      report("memory", `${label}.heap_used_per_variable`, (m.heapDeltaMb * 1024) / VARIABLES, "KB");
      report("memory", `${label}.rebuild`, m.events / m.rebuildS, "events/s");
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  },
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const path = process.argv[2];
  if (path) console.log(JSON.stringify(await measureChild(path)));
  else await memorySuite.run();
}
