/**
 * ReAct end to end from TypeScript with a tool of the user's own: the config names a Python module
 * (`python.tools`) whose TOOLS the workers load; a program's ReAct stage names the tool; the test LM's
 * rules make the agent call it, and its answer depends on what the tool returned — so the tool really ran
 * in the worker. Embedded log, real Python workers, the public entry point.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dspy, program, v } from "../../index.ts";
import { findPython } from "../../processors/workers/python.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { temporaryFolder } from "../support/backends.ts";
import { dspexHere } from "../support/dspex-here.ts";
import { setEnv } from "../support/env.ts";
import { testLmRule } from "../support/test-lm.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the ReAct tools test: ${found.reason}`);

const toolsModule = `
def word_count(text: str) -> str:
    """Counts the words of a text."""
    return f"{len(text.split())} words"


TOOLS = {"word_count": word_count}
`;

/** The test LM: count with the tool, then finish; the answer is read from the tool's observation. */
const rules = [
  testLmRule("observation_0", { next_thought: "counted", next_tool_name: "finish", next_tool_args: {} }),
  testLmRule(["observation_0", "6 words"], { answer: "six" }),
  testLmRule("How many words", {
    next_thought: "count them",
    next_tool_name: "word_count",
    next_tool_args: { text: "the quick brown fox jumps high" },
  }),
];

describe.skipIf(!found.python)("ReAct with the user's tools (embedded log, Python workers)", () => {
  const undo: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const step of undo.reverse()) await step();
  });

  it("runs a tool from the module the config names, and answers from its result", async () => {
    const folder = temporaryFolder("dspex-react-tools-");
    writeFileSync(join(folder, "dspex_word_tools.py"), toolsModule);
    writeFileSync(join(folder, "rules.json"), JSON.stringify(rules));
    writeFileSync(
      join(folder, "dspex.config.json"),
      JSON.stringify({
        embedded: { path: join(folder, "log.db") },
        python: { workers: 1, tools: ["dspex_word_tools"] },
      }),
    );
    // The workers inherit this process's environment: where the module is, and the test LM's rules.
    undo.push(setEnv({ PYTHONPATH: folder, DSPEX_TEST_LM_ANSWERS: join(folder, "rules.json") }));

    const { dspex, stop } = await dspexHere({
      log: { config: join(folder, "dspex.config.json"), backend: "embedded" },
      processors: ["pipeline"],
    });
    undo.push(stop);
    const agent = await dspex.register(
      program("react-words")
        .input("question: str")
        .variable("model", v.model(["dspex/test"]))
        .stage("agent", dspy.react("question -> answer", { tools: ["word_count"], maxIters: 3 })),
    );

    const result = await dspex.execute({ program: agent, inputs: { question: "How many words are in it?" } });
    expect(result.type).toBe("ExecutionCompleted");
    if (result.type !== "ExecutionCompleted") return;
    expect(result.data.outputs.answer).toBe("six");
    const steps = (await readEvents(dspex.log, Topics.stepResults)).flatMap((r) =>
      "event" in r && r.event.type === "StepCompleted" && r.event.data.executionId === result.data.executionId
        ? [r.event.data]
        : [],
    );
    expect(steps).toHaveLength(1);
    expect(steps[0]!.usage.calls).toBe(3); // think → tool, think → finish, extract
  });
});
