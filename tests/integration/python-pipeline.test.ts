import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPipeline } from "../../processors/pipeline/pipeline.ts";
import { startWorkerPool, type WorkerPool } from "../../processors/workers/pool.ts";
import { findPython } from "../../processors/workers/python.ts";
import { startStepRunner } from "../../processors/workers/step-runner.ts";
import { createClient } from "../../streams/client.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { temporaryFolder } from "../support/backends.ts";
import { expectTriageCompleted, mixedTriage, triageMessages } from "../support/programs.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the Python pipeline tests: ${found.reason}`);

const triage = mixedTriage("py-triage");

describe.skipIf(!found.python)(
  "a pipeline mixing native and DSPy stages, run by Python stdio workers",
  () => {
    let log: EventLog;
    let pool: WorkerPool;
    let stop: () => Promise<void>;

    beforeAll(async () => {
      log = await openLog({ backend: "embedded", path: join(temporaryFolder("dspex-py-"), "log.db") });
      pool = startWorkerPool({ python: found.python!, workers: 2 });
      const runner = startStepRunner(log, pool);
      const pipeline = startPipeline(log);
      await Promise.all([pool.ready(), pipeline.ready]);
      await createClient(log).register(triage.build());
      stop = async () => {
        await pipeline.stop();
        await runner.stop();
        await pool.close();
        await log.close();
      };
    }, 180_000);
    afterAll(() => stop?.());

    it("completes with typed outputs from every stage and one result per request", async () => {
      const client = createClient(log);
      const results = await Promise.all(
        triageMessages.map((message, i) =>
          client.execute(
            { requestId: `py-${i}`, programId: "py-triage", inputs: { message } },
            { timeoutMs: 120_000 },
          ),
        ),
      );
      expectTriageCompleted(results);
      const final = (await readEvents(log, Topics.results)).filter(
        (r) => "event" in r && r.event.type === "ExecutionCompleted",
      );
      expect(final).toHaveLength(3);
      const workers = (await readEvents(log, Topics.stepResults)).flatMap((r) =>
        "event" in r && r.event.type === "StepCompleted" ? [r.event.data.worker] : [],
      );
      expect(workers).toHaveLength(6);
      for (const worker of workers) expect(worker).toMatch(/^py-\d+-\d+$/);
    }, 180_000);
  },
);
