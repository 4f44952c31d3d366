import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signature } from "../programs/signatures/signature.ts";
import {
  executionsProjection,
  foldInto,
  folding,
  type Projection,
  projectionRunner,
  variablesProjection,
} from "../projections/index.ts";
import { encodeEvent } from "../streams/codec.ts";
import { openEmbeddedLog } from "../streams/embedded/log.ts";
import type { DspexEvent } from "../streams/events/index.ts";
import {
  ExecutionStarted,
  StageCompleted,
  VariableChanged,
  VariableDeclared,
} from "../streams/events/index.ts";
import { type AppendRecord, type EventLog, textOf } from "../streams/log.ts";
import { Topics } from "../streams/topics.ts";
import { percentile, report, type Suite, seconds } from "./report.ts";

const SIGNATURE =
  "question: str(min_length=1, max_length=500), context: list[str](max_items=10), k: int(min=1, max=20) = 5 -> " +
  "answer: str, label: Literal['yes', 'no'], p: probability";
const REPLAY_EVENTS = Number(process.env.DSPEX_BENCH_REPLAY_EVENTS ?? 1_000_000);

const signatureLatency = () => {
  const inputs = {
    question: "What is the capital of France?",
    context: ["Paris is in France.", "Lyon too."],
  };
  const samples: number[] = [];
  for (let i = 0; i < 50_000; i++) {
    const start = process.hrtime.bigint();
    const result = signature(SIGNATURE).validateInputs(inputs);
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
    if (!result.ok) throw new Error(result.message);
  }
  const warm = samples.slice(5_000).sort((a, b) => a - b);
  report("programs", "signature.parse_validate.p50", percentile(warm, 50), "µs");
  report("programs", "signature.parse_validate.p99", percentile(warm, 99), "µs");
  const cold: number[] = [];
  for (let i = 0; i < 2_000; i++) {
    const start = process.hrtime.bigint();
    signature(`${SIGNATURE}, extra${i}: float`);
    cold.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  cold.sort((a, b) => a - b);
  report("programs", "signature.parse_uncached.p50", percentile(cold, 50), "µs");
  report("programs", "signature.parse_uncached.p99", percentile(cold, 99), "µs");
};

/** Records made from one validated event per type, with ids and values varied (creating 1M through zod is slow). */
export const replayRecords = (count: number): AppendRecord[][] => {
  const at = "2026-01-01T00:00:00.000Z";
  const templates = [
    VariableDeclared.create({
      stream: "variable-v",
      key: "v",
      occurredAt: at,
      data: {
        variableId: "v",
        declaration: { name: "t", spec: { kind: "float", min: 0, max: 2 }, initial: 1 },
      },
    }),
    VariableChanged.create({
      stream: "variable-v",
      key: "v",
      occurredAt: at,
      data: { variableId: "v", value: 1, previous: 1, version: 1, actor: "bench", reason: "" },
    }),
    ExecutionStarted.create({
      stream: "execution-e",
      key: "e",
      occurredAt: at,
      data: {
        executionId: "e",
        requestId: "r",
        programId: "qa",
        programVersion: 1,
        sessionId: "s",
        inputs: {},
        levels: [["a"]],
      },
    }),
    StageCompleted.create({
      stream: "execution-e",
      key: "e",
      occurredAt: at,
      data: { executionId: "e", stageId: "a", attempt: 0, outputs: { answer: "Paris" }, durationMs: 12 },
    }),
  ].map((event) => encodeEvent(event));
  const batches: AppendRecord[][] = [];
  let batch: AppendRecord[] = [];
  const versions = new Array<number>(1000).fill(0);
  for (let i = 0; i < count; i++) {
    const variable = `v${i % 1000}`;
    const execution = `e${Math.floor(i / 4)}`;
    const kind = i < 1000 ? 0 : i % 2 === 0 ? 1 : i % 4 === 1 ? 2 : 3;
    const template = templates[kind]!;
    const key = kind <= 1 ? variable : execution;
    const id = `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;
    const value = (template.value as string)
      .replace(/"id":"[^"]+"/, `"id":"${id}"`)
      .replaceAll(kind <= 1 ? '"v"' : '"e"', `"${key}"`)
      .replace('"version":1', `"version":${kind === 1 ? ++versions[i % 1000]! : 1}`);
    batch.push({ ...template, key, value, headers: { ...template.headers, "dspex-id": id } });
    if (batch.length === 5000) {
      batches.push(batch);
      batch = [];
    }
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
};

/**
 * What this machine allows whatever the log: `JSON.parse` and the folds alone, over envelopes already in
 * memory (no reads, no runner). The replay above cannot beat it; it says how far the goal is from the CPU.
 */
const parseAndFoldCeiling = async (log: EventLog, sample: number) => {
  const texts: string[] = [];
  for (const topic of [Topics.variables, Topics.executions]) {
    for (const record of await log.read(topic, { partition: 0, limit: sample / 2 }))
      texts.push(textOf(record));
  }
  const projections = [variablesProjection, executionsProjection] as Projection<unknown>[];
  const best: number[] = [];
  for (let round = 0; round < 3; round++) {
    const folds = projections.map((projection) => folding(projection, new Map()));
    const start = process.hrtime.bigint();
    for (const text of texts) {
      const event = JSON.parse(text) as DspexEvent;
      foldInto(event.type.startsWith("Variable") ? folds[0]! : folds[1]!, event);
    }
    best.push(texts.length / seconds(start));
  }
  report("programs", "replay.ceiling.parse+fold_in_memory", Math.max(...best), "events/s");
};

/**
 * The other bound: reading every record of the replayed topics from the log, parsing nothing (what the
 * storage costs). A replay lies between this floor and the ceiling above.
 */
const readOnlyFloor = async (log: EventLog) => {
  const start = process.hrtime.bigint();
  let records = 0;
  for (const topic of [Topics.variables, Topics.executions]) {
    for (let partition = 0; partition < (await log.partitions(topic)); partition++) {
      for (let offset = 0; ; ) {
        const batch = await log.read(topic, { partition, fromOffset: offset, limit: 5000 });
        records += batch.length;
        if (batch.length < 5000) break;
        offset = batch.at(-1)!.offset + 1;
      }
    }
  }
  report("programs", "replay.floor.read_only", records / seconds(start), "records/s");
};

const replayThroughput = async () => {
  const folder = mkdtempSync(join(tmpdir(), "dspex-bench-programs-"));
  const log = openEmbeddedLog({ path: join(folder, "log.db") });
  try {
    for (const batch of replayRecords(REPLAY_EVENTS)) await log.append(batch);
    for (const decode of ["trusted", "validated"] as const) {
      const runner = projectionRunner({
        name: "bench",
        log,
        projections: [variablesProjection, executionsProjection],
        decode,
      });
      const start = process.hrtime.bigint();
      const cpuBefore = process.cpuUsage();
      const applied = await runner.rebuild();
      const rate = applied / seconds(start);
      const cpu = process.cpuUsage(cpuBefore);
      if (applied !== REPLAY_EVENTS) throw new Error(`replayed ${applied} of ${REPLAY_EVENTS} events`);
      report("programs", `replay.variables+executions.${decode}`, rate, "events/s");
      // Per second of this process's CPU time: what the replay reaches on a core of its own (a busy,
      // shared machine stretches the wall-clock figure above, not this one).
      report(
        "programs",
        `replay.variables+executions.${decode}.cpu`,
        applied / ((cpu.user + cpu.system) / 1e6),
        "events/cpu-s",
      );
    }
    await readOnlyFloor(log);
    await parseAndFoldCeiling(log, Math.min(REPLAY_EVENTS, 200_000));
  } finally {
    await log.close();
    rmSync(folder, { recursive: true, force: true });
  }
};

export const programsSuite: Suite = {
  name: "programs",
  description: `signature parse+validate latency; replay of the variables+executions projections over ${REPLAY_EVENTS} events`,
  async run() {
    signatureLatency();
    await replayThroughput();
  },
};

if (import.meta.url === `file://${process.argv[1]}`) await programsSuite.run();
