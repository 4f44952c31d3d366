/**
 * `dspex evaluate` and `dspex optimize` against a running deployment (`dspex processors` with Python
 * workers): they start nothing of their own — they say they use the running processors — publish their
 * request and follow it to its end. On the embedded log and on Kafka, as separate processes.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findPython } from "../../processors/workers/python.ts";
import { dspy, program, v } from "../../programs/index.ts";
import { registerProgram } from "../../programs/register.ts";
import type { LogConfig } from "../../streams/open.ts";
import { openLog } from "../../streams/open.ts";
import { type BackendUnderTest, embeddedBackend, skippedHere, temporaryFolder } from "../support/backends.ts";
import { type DspexChild, dspex, stopChild } from "../support/cli.ts";
import { kafkaBackend } from "../support/kafka.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the deployment CLI tests: ${found.reason}`);

const qa = program("deployed-qa")
  .input("question: str")
  .variable("model", v.model(["dspex/test"]))
  .stage("answer", dspy.predict("question -> answer"), { variables: { demos: v.demos(4) } })
  .output("answer", "answer.answer");

const envOf = (config: LogConfig): NodeJS.ProcessEnv => ({
  ...process.env,
  DSPEX_PYTHON: found.python,
  ...(config.backend === "kafka"
    ? {
        DSPEX_BACKEND: "kafka",
        DSPEX_KAFKA_BROKERS: String(config.brokers),
        DSPEX_KAFKA_NAMESPACE: config.namespace ?? "",
      }
    : { DSPEX_BACKEND: "embedded", DSPEX_LOG_PATH: (config as { path: string }).path }),
});

const jsonl = (folder: string, name: string, count: number) => {
  const path = join(folder, name);
  const lines = Array.from({ length: count }, (_, i) =>
    JSON.stringify({ id: `${name}-${i}`, inputs: { question: `question ${i}` }, expected: { answer: "x" } }),
  );
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
};

const output = (child: DspexChild) => [...child.lines, ...child.errors].join("\n");

describe.skipIf(!found.python).each([embeddedBackend, kafkaBackend])(
  "dspex evaluate and optimize against a running deployment: $name",
  (backend: BackendUnderTest) => {
    if (skippedHere(backend)) return;
    const children: DspexChild[] = [];
    afterEach(async () => {
      await Promise.all(children.splice(0).map((c) => stopChild(c.child)));
    }, 60_000);

    it("publish their request to the running processors and follow it to its end", async () => {
      const config = backend.freshConfig();
      const log = await openLog(config);
      await registerProgram(log, qa.build());
      await log.close();
      const env = envOf(config);
      const processors = dspex(["processors", "--stdio-workers", "1"], env);
      children.push(processors);
      await processors.waitFor(/processors ready/, 180_000);

      const folder = temporaryFolder("dspex-deployed-");
      const evaluate = dspex(
        ["evaluate", "deployed-qa", "--dataset", jsonl(folder, "dev", 6), "--field", "answer"],
        env,
      );
      children.push(evaluate);
      expect(await evaluate.exited, output(evaluate)).toBe(0);
      expect(evaluate.errors.join("\n")).toMatch(/using the running pipeline, evaluation/);
      expect(evaluate.errors.join("\n")).not.toMatch(/started here/);
      expect(evaluate.lines[0]).toMatch(
        /^evaluation .*: score \d\.\d{3} on 6 examples, 0 failed, 6 LM calls$/,
      );

      const optimize = dspex(
        [
          "optimize",
          "deployed-qa",
          "--trainset",
          jsonl(folder, "train", 4),
          "--devset",
          jsonl(folder, "dev", 3),
          "--field",
          "answer",
          "--optimizer",
          "random",
          "--max-trials",
          "2",
        ],
        env,
      );
      children.push(optimize);
      expect(await optimize.exited, output(optimize)).toBe(0);
      expect(optimize.errors.join("\n")).toMatch(
        /using the running pipeline, evaluation, registry, optimizer/,
      );
      expect(optimize.lines[0]).toMatch(
        /^optimization .*: dev score \d\.\d{3} → \d\.\d{3} \((not )?adopted\), \d+ trials/,
      );
      // The deployment's optimizer ran it: its progress lines are in its output.
      expect(processors.lines.some((line) => /optimization .*: trial \d+\/\d+/.test(line))).toBe(true);
    }, 300_000);
  },
);
