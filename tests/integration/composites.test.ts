/**
 * A composite variable resolved at runtime: a stage's instructions are computed (`join`) from two text
 * variables, and the test LM follows the rule those instructions state — so what the Python worker got is
 * the composite's value, from the registry's values or a request's override of one of its inputs.
 * Embedded log, real Python workers, the public entry point.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dspy, program, v } from "../../index.ts";
import { findPython } from "../../processors/workers/python.ts";
import { temporaryFolder } from "../support/backends.ts";
import { dspexHere } from "../support/dspex-here.ts";
import { testLmRule } from "../support/test-lm.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the composites test: ${found.reason}`);

describe.skipIf(!found.python)("composite variables at runtime (embedded log, Python workers)", () => {
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it("a stage's instructions joined from two variables reach the worker; an override of one changes them", async () => {
    const folder = temporaryFolder("dspex-composites-");
    // demo_gated: a question the rules know is answered, without a demo of the answer, by the last
    // "When <input> is <value>, answer <text>." of the instructions.
    writeFileSync(join(folder, "rules.json"), JSON.stringify([testLmRule("ping", { answer: "gated" })]));
    const saved = process.env.DSPEX_TEST_LM_ANSWERS;
    process.env.DSPEX_TEST_LM_ANSWERS = join(folder, "rules.json");
    stops.push(async () => {
      if (saved === undefined) delete process.env.DSPEX_TEST_LM_ANSWERS;
      else process.env.DSPEX_TEST_LM_ANSWERS = saved;
    });
    const { dspex, stop } = await dspexHere({
      log: { backend: "embedded", log: join(folder, "log.db") },
      processors: ["pipeline"],
    });
    stops.push(stop);
    const ruled = await dspex.register(
      program("composed-rules")
        .input("question: str")
        .variable("model", v.model(["dspex/test?mode=demo_gated"]))
        .stage("reply", dspy.predict("question -> answer"), {
          variables: {
            persona: v.text("You are a terse support agent."),
            rule: v.text("When question is ping, answer pong."),
            instructions: v.composite(["persona", "rule"], "join"),
          },
        }),
    );

    const answerOf = async (overrides: Record<string, string>) => {
      const result = await dspex.execute({ program: ruled, inputs: { question: "ping" }, overrides });
      expect(result.type).toBe("ExecutionCompleted");
      return result.type === "ExecutionCompleted" ? result.data.outputs.answer : undefined;
    };
    expect(await answerOf({})).toBe("pong");
    expect(await answerOf({ "composed-rules.reply.rule": "When question is ping, answer pang." })).toBe(
      "pang",
    );
  });
});
