/**
 * Paid work runs once: the main job on Kafka runs its steps on its own stdio workers; `dspex workers`
 * started afterwards — a new consumer group with no committed offsets on dspex.steps — finds every one of
 * those steps answered on the log and runs none of them (zero LM calls), then runs the next request's.
 */
import { afterAll, describe, expect, it } from "vitest";
import { findPython } from "../../processors/workers/python.ts";
import { caughtUp } from "../../streams/lag.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { type DspexChild, dspex, stopChild } from "../support/cli.ts";
import { freshKafkaConfig, kafkaForTests } from "../support/kafka.ts";

const found = findPython();
const kafka = kafkaForTests();
const skipReason = !found.python ? found.reason : "skipReason" in kafka ? kafka.skipReason : undefined;
if (skipReason) console.warn(`skipping the paid-work-once test: ${skipReason}`);

const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 120_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
};

describe.skipIf(skipReason !== undefined)("paid work runs once (Kafka)", () => {
  const children: DspexChild[] = [];
  let log: EventLog | undefined;
  afterAll(async () => {
    await Promise.all(children.map((c) => stopChild(c.child)));
    await log?.close();
  }, 60_000);

  it("dspex workers started after the main job runs none of its answered steps", async () => {
    const config = freshKafkaConfig();
    const env = {
      ...process.env,
      DSPEX_BACKEND: "kafka",
      DSPEX_KAFKA_BROKERS: (kafka as { brokers: string }).brokers,
      DSPEX_KAFKA_NAMESPACE: config.namespace,
      DSPEX_PYTHON: found.python,
    };
    const demo = dspex(["demo", "--model", "dspex/test", "--workers", "1"], env);
    children.push(demo);
    expect(await demo.exited, [...demo.lines, ...demo.errors].join("\n")).toBe(0);

    log = await openLog(config);
    const started = async () =>
      (await readEvents(log!, Topics.stepResults)).flatMap((r) =>
        "event" in r && r.event.type === "StepStarted" ? [r.event.data.worker] : [],
      );
    const answered = (await started()).length;
    expect(answered).toBeGreaterThan(20);

    const workers = dspex(["workers", "-n", "1", "--name", "late"], env);
    children.push(workers);
    await workers.waitFor(/late-1: assigned .*dspex\.steps/);
    // The new group has read every step the main job dispatched: committed to the end of each partition.
    await until("the workers' group to commit every step", () =>
      caughtUp(log!, "dspex-consumers", [Topics.steps]),
    );
    expect((await started()).filter((worker) => worker.startsWith("late"))).toEqual([]);

    // Alive and working: the next request's steps run on it.
    const run = dspex(
      ["run", "support-triage", "-i", "message=I was charged twice", "--no-local", "--timeout", "60000"],
      env,
    );
    expect(await run.exited, [...run.lines, ...run.errors].join("\n")).toBe(1);
    expect(run.errors.join("\n")).toMatch(/nothing runs pipeline on this log/);
    const processors = dspex(["processors"], env);
    children.push(processors);
    await processors.waitFor(/processors ready/);
    const second = dspex(
      ["run", "support-triage", "-i", "message=I was charged twice", "--timeout", "60000"],
      env,
    );
    expect(await second.exited, [...second.lines, ...second.errors].join("\n")).toBe(0);
    expect(JSON.parse(second.lines.join("\n"))).toMatchObject({ type: "ExecutionCompleted" });
    const late = (await started()).filter((worker) => worker.startsWith("late"));
    expect(late.length).toBeGreaterThan(0);
    console.log(
      `[paid-once] the main job answered ${answered} steps; dspex workers started after it ran 0 of them, then ${late.length} of the next request`,
    );
  }, 300_000);
});
