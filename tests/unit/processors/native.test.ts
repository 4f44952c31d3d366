import { describe, expect, it } from "vitest";
import { runNativeStage } from "../../../processors/native/index.ts";
import { bm25, cosine } from "../../../processors/native/retrieve.ts";
import { renderTemplate } from "../../../processors/native/template.ts";
import { stage } from "./fixtures.ts";

const corpus = [
  { id: "fr", text: "Paris is the capital and largest city of France." },
  { id: "de", text: "Berlin is the capital of Germany." },
  { id: "cat", text: "Cats sleep most of the day." },
];

describe("native stages", () => {
  it("bm25 ranks the passage sharing the rarest terms first and leaves out passages sharing none", () => {
    const hits = bm25(corpus, "What is the capital of France?", 5);
    expect(hits.map((h) => h.passage.id)).toEqual(["fr", "de", "cat"].slice(0, hits.length));
    expect(hits[0]!.passage.id).toBe("fr");
    expect(bm25(corpus, "sleep", 5).map((h) => h.passage.id)).toEqual(["cat"]);
  });

  it("cosine ranks by TF-IDF for text, and by embeddings for an embedding query", () => {
    expect(cosine(corpus, "Germany capital", 1)[0]!.passage.id).toBe("de");
    const embedded = [
      { id: "x", text: "", embedding: [1, 0] },
      { id: "y", text: "", embedding: [0.6, 0.8] },
    ];
    expect(cosine(embedded, [0, 1], 2).map((h) => h.passage.id)).toEqual(["y"]);
  });

  it("retrieve returns the top-k texts under the stage's first output", () => {
    const retrieve = stage("r", {
      runtime: "native",
      module: "retrieve",
      inputs: ["query"],
      outputs: ["passages: list[str]"],
      config: { corpus: corpus.map((c) => c.text), k: 1, method: "cosine" },
    });
    expect(runNativeStage(retrieve, { query: "France" })).toEqual({
      ok: true,
      outputs: { passages: ["Paris is the capital and largest city of France."] },
    });
  });

  it("template fills placeholders, nested ones and lists, and keeps escaped braces", () => {
    expect(
      renderTemplate("Q: {q}\n{ctx}\n{meta.lang} {{x}}", {
        q: "why?",
        ctx: ["a", "b"],
        meta: { lang: "en" },
      }),
    ).toBe("Q: why?\na\nb\nen {x}");
  });

  it("transform runs a registered pure function, or fails naming an unknown one", () => {
    const shout = stage("t", {
      runtime: "native",
      module: "transform",
      inputs: ["text"],
      outputs: ["loud"],
      config: { fn: "shout" },
    });
    const transforms = { shout: (inputs: Record<string, unknown>) => ({ loud: `${inputs.text}!` }) };
    expect(runNativeStage(shout, { text: "hi" }, transforms)).toEqual({ ok: true, outputs: { loud: "hi!" } });
    const upper = stage("u", {
      runtime: "native",
      module: "transform",
      inputs: ["text"],
      outputs: ["upper"],
      config: { fn: "uppercase" },
    });
    expect(runNativeStage(upper, { text: "hi" })).toEqual({ ok: true, outputs: { upper: "HI" } });
    const result = runNativeStage(shout, { text: "hi" });
    expect(result.ok ? "" : result.error.message).toBe('unknown transform "shout" in stage t');
  });

  it("validate passes values that satisfy the signature and fails those that don't, with the reason", () => {
    const check = stage("v", {
      runtime: "native",
      module: "validate",
      inputs: ["score"],
      outputs: ["score: probability"],
    });
    expect(runNativeStage(check, { score: 0.3 })).toEqual({ ok: true, outputs: { score: 0.3 } });
    expect(runNativeStage(check, { score: 3 })).toEqual({
      ok: false,
      error: {
        kind: "invalid_output",
        message: "score must be between 0 and 1",
        retryable: false,
      },
    });
  });
});
