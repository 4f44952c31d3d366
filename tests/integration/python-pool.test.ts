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
