import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  PoolSaturatedError,
  pickTask,
  startWorkerPool,
  type WorkerPool,
} from "../../processors/workers/pool.ts";
import { findPython } from "../../processors/workers/python.ts";
import { parseEvent } from "../../streams/codec.ts";
import type { Envelope } from "../../streams/envelope.ts";
import { derivedId } from "../../streams/ids.ts";
import { temporaryFolder } from "../support/cleanup.ts";

const root = new URL("../..", import.meta.url).pathname;
const vector = JSON.parse(
  readFileSync(join(root, "tests/vectors/events/StepDispatched.v1.json"), "utf8"),
) as Envelope<"StepDispatched", Record<string, unknown>>;

const found = findPython();
if (!found.python) console.warn(`skipping the Python worker pool tests: ${found.reason}`);

const step = (overrides: { sessionKey?: string; model?: string } = {}): Envelope => {
  const stepId = randomUUID();
  const data = vector.data;
  return {
    ...vector,
    id: randomUUID(),
    data: {
      ...data,
      stepId,
      sessionKey: overrides.sessionKey ?? `session-${stepId}`,
      lm: { model: overrides.model ?? "dspex/test", temperature: 0, maxTokens: 256 },
    },
  };
};
const slow = (ms: number, sessionKey?: string) => step({ model: `dspex/test?latency_ms=${ms}`, sessionKey });

describe("pickTask (soft session affinity)", () => {
  const affinity = new Map([
    ["a", 0],
    ["b", 1],
  ]);
  it("takes its own session first, then sessions whose worker is busy or unknown", () => {
    const queue = [{ sessionKey: "b" }, { sessionKey: "new" }, { sessionKey: "a" }];
    expect(pickTask(queue, 0, affinity, () => true)).toBe(2);
    expect(pickTask(queue.slice(0, 2), 0, affinity, () => true)).toBe(1);
    expect(pickTask([{ sessionKey: "b" }], 0, affinity, (worker) => worker !== 1)).toBe(0);
    expect(pickTask([{ sessionKey: "b" }], 0, affinity, () => true)).toBe(-1);
  });
});

describe("pickTask (models loaded)", () => {
  const loaded = new Map([
    [0, new Set(["small"])],
    [1, new Set(["large"])],
  ]);
  const modelsOf = (worker: number) => loaded.get(worker) ?? new Set<string>();
  const none = new Map<string, number>();
  it("takes a task whose model it has loaded, and leaves one another idle worker has loaded to that worker", () => {
    const queue = [
      { sessionKey: "x", model: "large" },
      { sessionKey: "y", model: "small" },
      { sessionKey: "z", model: "new" },
    ];
    expect(pickTask(queue, 0, none, () => true, modelsOf, [0, 1])).toBe(1);
    expect(pickTask(queue, 1, none, () => true, modelsOf, [0, 1])).toBe(0);
    expect(pickTask([queue[0]!, queue[2]!], 0, none, () => true, modelsOf, [0, 1])).toBe(1);
    // The worker with the model is busy: the idle one takes it rather than let it wait.
    expect(pickTask([queue[0]!], 0, none, () => true, modelsOf, [0])).toBe(0);
  });
  it("gives a new model to the idle worker with fewer models loaded", () => {
    const blank = (worker: number) => (worker === 0 ? new Set(["small"]) : new Set<string>());
    const queue = [{ sessionKey: "n", model: "new" }];
    expect(pickTask(queue, 0, none, () => true, blank, [0, 1])).toBe(-1);
    expect(pickTask(queue, 1, none, () => true, blank, [0, 1])).toBe(0);
  });

  it("still serves a session's own worker first", () => {
    const queue = [{ sessionKey: "s", model: "large" }];
    expect(pickTask(queue, 0, new Map([["s", 0]]), () => true, modelsOf, [0, 1])).toBe(0);
  });
});

describe.skipIf(!found.python)("Python stdio worker pool (real processes)", () => {
  let pool: WorkerPool;

  beforeAll(async () => {
    const answers = join(temporaryFolder("dspex-pool-"), "answers.json");
    writeFileSync(answers, JSON.stringify({ "Capital of France?": { answer: "Paris" } }));
    pool = startWorkerPool({
      python: found.python!,
      workers: 2,
      queueLimit: 2,
      pingIntervalMs: 500,
      args: ["--test-answers", answers],
      cwd: root,
    });
    await pool.ready();
  });
  afterAll(async () => pool?.close());

  it("runs steps on the workers and returns valid started and result events", async () => {
    const dispatched = [step(), step()];
    const runs = await Promise.all(dispatched.map((event) => pool.run(event)));
    for (const [index, run] of runs.entries()) {
      const cause = dispatched[index]!;
      expect(parseEvent(run.started).ok).toBe(true);
      expect(parseEvent(run.result).ok).toBe(true);
      expect(run.result.type).toBe("StepCompleted");
      expect(run.result.id).toBe(derivedId(cause.id, "completed"));
      expect(run.started.id).toBe(derivedId(cause.id, "started"));
      expect((run.result.data as { outputs: unknown }).outputs).toEqual({ answer: "Paris" });
    }
  }, 60_000);

  it("keeps a session on the same worker", async () => {
    const workers = new Set<string>();
    for (let i = 0; i < 3; i++) workers.add((await pool.run(step({ sessionKey: "sticky" }))).worker);
    expect(workers.size).toBe(1);
  }, 60_000);

  it("refuses steps beyond the queue limit with pool_saturated", async () => {
    const accepted = [slow(800), slow(800), slow(800), slow(800)].map((event) => pool.run(event));
    await new Promise((wake) => setTimeout(wake, 50));
    await expect(pool.run(step())).rejects.toBeInstanceOf(PoolSaturatedError);
    await expect(pool.run(step())).rejects.toThrow(/pool_saturated/);
    const runs = await Promise.all(accepted);
    expect(runs.map((run) => run.result.type)).toEqual(Array(4).fill("StepCompleted"));
  }, 60_000);

  it("restarts a worker killed mid-step and runs the step again elsewhere: one result", async () => {
    const before = pool.stats().restarts;
    const running = pool.run(slow(2_500, "doomed"));
    await expect.poll(() => pool.stats().workers.some((worker) => worker.busy)).toBe(true);
    const victim = pool.stats().workers.findIndex((worker) => worker.busy);
    expect(victim).toBeGreaterThanOrEqual(0);
    process.kill(pool.pidOf(victim)!, "SIGKILL");
    const run = await running;
    expect(run.result.type).toBe("StepCompleted");
    expect(pool.stats().restarts).toBe(before + 1);
    await pool.ready();
    expect((await pool.run(step())).result.type).toBe("StepCompleted");
  }, 90_000);
});

describe.skipIf(!found.python)("Python stdio worker pool: models and memory (real processes)", () => {
  const pools: WorkerPool[] = [];
  afterAll(async () => {
    for (const pool of pools) await pool.close();
  });
  const start = (options: { maxWorkerMemoryMb?: number } = {}) => {
    const answers = join(temporaryFolder("dspex-pool-models-"), "answers.json");
    writeFileSync(answers, JSON.stringify({ "Capital of France?": { answer: "Paris" } }));
    const pool = startWorkerPool({
      python: found.python!,
      workers: 2,
      pingIntervalMs: 200,
      args: ["--test-answers", answers],
      cwd: root,
      ...options,
    });
    pools.push(pool);
    return pool;
  };

  it("sends a step to the idle worker that already ran its model", async () => {
    const pool = start();
    await pool.ready();
    const first = await pool.run(step({ model: "dspex/test?mode=lookup" }));
    const other = await pool.run(step({ model: "dspex/test?mode=nearest_demo" }));
    // Each worker has said which model it ran: the next steps of each model go to that worker.
    await expect.poll(() => pool.stats().workers.every((w) => w.models.length > 0)).toBe(true);
    expect(other.worker).not.toBe(first.worker);
    for (let i = 0; i < 4; i++) {
      expect((await pool.run(step({ model: "dspex/test?mode=lookup" }))).worker).toBe(first.worker);
      expect((await pool.run(step({ model: "dspex/test?mode=nearest_demo" }))).worker).toBe(other.worker);
    }
    const models = pool.stats().workers.map((w) => [w.name, w.models]);
    expect(models).toContainEqual([first.worker, ["dspex/test?mode=lookup"]]);
    expect(pool.stats().workers.every((w) => w.memoryMb > 0)).toBe(true);
  }, 90_000);

  it("restarts a worker past its memory limit once it is idle, and every step still runs", async () => {
    const pool = start({ maxWorkerMemoryMb: 1 }); // every worker is past it after its first step
    await pool.ready();
    const runs = await Promise.all(Array.from({ length: 4 }, () => pool.run(step())));
    expect(runs.map((run) => run.result.type)).toEqual(Array(4).fill("StepCompleted"));
    expect(pool.stats().recycled).toBeGreaterThanOrEqual(2);
    await pool.ready();
    expect((await pool.run(step())).result.type).toBe("StepCompleted");
  }, 120_000);
});
