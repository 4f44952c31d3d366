/**
 * The examples/ scripts are what a user writes: each imports dspex only through its public entry point
 * ("dspex") and runs to its end in a process of its own, on a fresh log, with real Python workers (the
 * deterministic test LM) and, for scale-out, on Kafka.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { findPython } from "../../processors/workers/python.ts";
import { temporaryFolder } from "../support/backends.ts";
import { trackChild } from "../support/cleanup.ts";
import { freshKafkaConfig, kafkaForTests } from "../support/kafka.ts";
import { root, typescriptNode } from "../support/processes.ts";

const folder = join(root, "examples");
const scripts = readdirSync(folder).filter((name) => name.endsWith(".ts"));

const found = findPython();
if (!found.python) console.warn(`skipping the examples that run DSPy steps: ${found.reason}`);
const kafka = kafkaForTests();

/** Runs an example to its end; resolves with its exit code and what it printed. */
const run = async (script: string, env: NodeJS.ProcessEnv) => {
  const child = trackChild(
    spawn(...typescriptNode(join(folder, script), []), {
      cwd: root,
      env: { ...process.env, DSPEX_MODEL: "dspex/test", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  const code = await new Promise<number | null>((done) => child.once("exit", (c) => done(c)));
  if (code !== 0) throw new Error(`${script} exited with ${code}:\n${stdout}\n${stderr}`);
  return stdout.trim().split("\n");
};

const onEmbeddedLog = () => ({
  DSPEX_BACKEND: "embedded",
  DSPEX_LOG_PATH: join(temporaryFolder("dspex-example-"), "log.db"),
});

describe("examples/", () => {
  it("import dspex only through its public entry point", () => {
    expect(scripts.length).toBeGreaterThanOrEqual(4);
    for (const script of scripts) {
      const source = readFileSync(join(folder, script), "utf8");
      const imported = [...source.matchAll(/from\s+"([^"]+)"/g)].map((m) => m[1]!);
      expect(imported, script).toContain("dspex");
      expect(
        imported.filter((name) => name !== "dspex" && !name.startsWith("node:")),
        script,
      ).toEqual([]);
    }
  });

  it("replay: a second run on the same log replays the first one's execution and its own", async () => {
    const env = onEmbeddedLog();
    const first = await run("replay.ts", env);
    expect(first).toContain('ran: ExecutionCompleted {"greeting":"Hello, Ada!"}');
    expect(first).toContain('variable example-greeter.greet.tone = "plain" (v0)');
    expect(first).toContain("executions of example-greeter: 1, last completed");
    expect(first).toContain("session ada: 1 executions");
    const second = await run("replay.ts", env);
    expect(second).toContain("executions of example-greeter: 2, last completed");
    expect(second).toContain("session ada: 2 executions");
    const events = (lines: string[]) => Number(lines.find((l) => l.startsWith("replayed"))?.split(" ")[1]);
    expect(events(second)).toBeGreaterThan(events(first));
  });

  it.skipIf(!found.python)("publish-subscribe: progress as it happens, then the typed result", async () => {
    const lines = await run("publish-subscribe.ts", onEmbeddedLog());
    expect(lines).toContain("progress: ExecutionStarted");
    // The stage started (its step went to a worker) before it completed.
    const started = lines.indexOf("progress: StepDispatched classify");
    expect(started).toBeGreaterThanOrEqual(0);
    expect(lines.indexOf("progress: StageCompleted classify")).toBeGreaterThan(started);
    expect(lines.at(-1)).toMatch(/^category: (billing|shipping|technical)$/);
  });

  it.skipIf(!found.python)("custom stage and metric: the transform redacts, the metric scores", async () => {
    const lines = await run("custom-stage-and-metric.ts", onEmbeddedLog());
    const accepted = [["billing"], ["shipping", "billing"], ["technical"]];
    const scores = accepted.map((categories, i) => {
      const line = lines.find((l) => l.startsWith(`example-${i}: `));
      expect(line, `example-${i}`).toBeDefined();
      const [, outputs, score] = /^example-\d+: (\{.*\}) scored (\d+(?:\.\d+)?)$/.exec(line!)!;
      const { clean, category } = JSON.parse(outputs!) as { clean: string; category: string };
      expect(clean).not.toMatch(/\d{4,}/);
      expect(Number(score)).toBe(categories.includes(category) ? 1 : 0);
      return Number(score);
    });
    expect(lines.find((l) => l.startsWith("example-0: "))).toContain("[number]");
    const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
    expect(lines.at(-1)).toBe(`score ${mean.toFixed(3)} on 3 examples, 0 errors`);
  });

  it.skipIf("skipReason" in kafka)(
    "scale-out: two processor processes on Kafka share the partitions",
    async () => {
      const config = freshKafkaConfig();
      const lines = await run("scale-out.ts", {
        DSPEX_BACKEND: "kafka",
        DSPEX_KAFKA_BROKERS: String(config.brokers),
        DSPEX_KAFKA_NAMESPACE: config.namespace,
      });
      expect(lines.at(-1)).toBe("20 of 20 requests completed by 2 processor processes");
      const holders = new Set(
        lines.flatMap((l) => /^\[(\d+)\] pipeline partitions \d/.exec(l)?.slice(1, 2) ?? []),
      );
      expect(holders.size).toBe(2);
    },
  );
});
