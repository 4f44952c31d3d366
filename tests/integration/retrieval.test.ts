/**
 * Retrieval with embeddings end to end: a program whose first stage retrieves passages in the Python
 * workers (a corpus the config registers, embedded by the deterministic test embedder or by the offline
 * model in llama.cpp's embedding mode) and whose second stage answers from them with the test LM. A
 * Retrieve stage without its settings fails as a bad request instead of stopping the pipeline.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dspy, program } from "../../index.ts";
import { findPython } from "../../processors/workers/python.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { temporaryFolder } from "../support/backends.ts";
import { dspexHere } from "../support/dspex-here.ts";
import { setEnv } from "../support/env.ts";
import { testLmRule } from "../support/test-lm.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the retrieval test: ${found.reason}`);

const faq = [
  "I forgot my password and cannot log in: use the reset link on the login page.",
  "Where is my parcel? Deliveries take five working days.",
  "I was billed two times for one order: the second charge is refunded in three days.",
];

/** The answering stage's test LM: the passage it was given decides the answer. */
const rules = [
  testLmRule("reset link", { answer: "use the reset link" }),
  testLmRule("five working days", { answer: "within five working days" }),
  testLmRule("refunded in three days", { answer: "refunded within three days" }),
];

const rag = (programId: string, embedder: string) =>
  program(programId)
    .input("question: str")
    .stage("search", dspy.retrieve("question -> passages: list[str]", { corpus: "faq", embedder, k: 1 }))
    .stage("answer", dspy.predict("question, passages: list[str] -> answer", { model: "dspex/test" }), {
      dependsOn: ["search"],
    })
    .output("answer", "answer.answer")
    .output("passages", "search.passages");

describe.skipIf(!found.python)("retrieval with embeddings (embedded log, Python workers)", () => {
  const undo: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const step of undo.reverse()) await step();
  });

  const start = async () => {
    const folder = temporaryFolder("dspex-retrieval-");
    writeFileSync(join(folder, "faq.json"), JSON.stringify(faq));
    writeFileSync(join(folder, "rules.json"), JSON.stringify(rules));
    writeFileSync(
      join(folder, "dspex.config.json"),
      JSON.stringify({
        embedded: { path: join(folder, "log.db") },
        python: { workers: 1, corpora: { faq: join(folder, "faq.json") } },
      }),
    );
    undo.push(setEnv({ DSPEX_TEST_LM_ANSWERS: join(folder, "rules.json") }));
    const here = await dspexHere({
      log: { config: join(folder, "dspex.config.json"), backend: "embedded" },
      processors: ["pipeline"],
    });
    undo.push(here.stop);
    return here.dspex;
  };

  it("retrieves the nearest passage of the registered corpus, and the next stage answers from it", async () => {
    const dspex = await start();
    const cases = [
      ["How do I reset my password? I forgot it", faq[0], "use the reset link"],
      ["When will my parcel arrive?", faq[1], "within five working days"],
      ["Why was I billed two times?", faq[2], "refunded within three days"],
    ] as const;
    for (const embedder of ["dspex/test", "dspex/offline"]) {
      const registered = await dspex.register(rag(`faq-${embedder.replace("/", "-")}`, embedder));
      for (const [question, passage, answer] of cases) {
        const result = await dspex.execute(
          { program: registered, inputs: { question } },
          { timeoutMs: 120_000 },
        );
        expect(result.type, `${embedder}: ${question}`).toBe("ExecutionCompleted");
        if (result.type !== "ExecutionCompleted") continue;
        expect(result.data.outputs, `${embedder}: ${question}`).toEqual({ answer, passages: [passage] });
      }
    }
    const retrievals = (await readEvents(dspex.log, Topics.stepResults)).flatMap((r) =>
      "event" in r && r.event.type === "StepCompleted" && r.event.data.stageId === "search"
        ? [r.event.data]
        : [],
    );
    expect(retrievals).toHaveLength(2 * cases.length);
    expect(retrievals.every((step) => step.usage.calls === 0)).toBe(true);
  }, 240_000);

  it("fails a Retrieve stage without its settings as a bad request, and goes on", async () => {
    const dspex = await start();
    const definition = {
      ...rag("faq-broken", "dspex/test").build(),
      programId: "faq-broken",
    };
    definition.stages[0] = { ...definition.stages[0]!, config: { corpus: "faq" } };
    await dspex.register(definition);
    const result = await dspex.execute({ programId: "faq-broken", inputs: { question: "reset?" } });
    expect(result.type).toBe("ExecutionFailed");
    if (result.type !== "ExecutionFailed") return;
    expect(result.data.error).toMatchObject({ kind: "bad_request", retryable: false });
    expect(result.data.error.message).toMatch(/stage search: a Retrieve stage needs config .*embedder/);
    const working = await dspex.register(rag("faq-working", "dspex/test"));
    expect(
      (await dspex.execute({ program: working, inputs: { question: "When will my parcel arrive?" } })).type,
    ).toBe("ExecutionCompleted");
  }, 240_000);
});
