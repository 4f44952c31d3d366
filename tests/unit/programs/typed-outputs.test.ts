/**
 * Outputs typed from the signatures' text at compile time: these tests fail in the type check
 * (`tsc --noEmit`, part of the test command) when an inferred type is wrong, and at runtime when the
 * built program differs from what its types say.
 */
import { describe, expect, expectTypeOf, it } from "vitest";
import type { Dspex } from "../../../index.ts";
import { dspy, native, type ProgramOutputs, program } from "../../../programs/builder.ts";
import type { OutputsOf } from "../../../programs/signatures/infer.ts";

describe("outputs typed from a signature's text", () => {
  it("reads every type the signature language has", () => {
    expectTypeOf<
      OutputsOf<`"Answer it." question, passages: list[str] -> answer, score: float(min=0, max=1), n: int, ok: bool, tags: list[str](max_items=3), label: Literal['a', "b", 3, True], vector: embedding, counts: dict[str, int], note: Optional[str]`>
    >().toEqualTypeOf<{
      answer: string;
      score: number;
      n: number;
      ok: boolean;
      tags: string[];
      label: "a" | "b" | 3 | true;
      vector: number[];
      counts: Record<string, number>;
      note: string | null;
    }>();
  });

  it("gives untyped fields for a signature it was not given as text", () => {
    expectTypeOf<OutputsOf<string>>().toEqualTypeOf<Record<string, unknown>>();
  });
});

describe("a program's outputs", () => {
  const classify = dspy.predict("message -> category: Literal['billing', 'technical'], confidence: float");

  it("are its last stage's outputs when it names none", () => {
    const built = program("typed-last")
      .input("message: str")
      .stage("faq", native.retrieve("message -> passages: list[str]", { corpus: ["a"] }))
      .stage("classify", classify, { dependsOn: ["faq"] })
      .build();
    expectTypeOf<ProgramOutputs<typeof built>>().toEqualTypeOf<{
      category: "billing" | "technical";
      confidence: number;
    }>();
    expect(Object.keys(built.outputs).sort()).toEqual(["category", "confidence"]);
  });

  it("are the named outputs, typed from the stage fields they come from", () => {
    const built = program("typed-named")
      .input("message: str")
      .stage("faq", native.retrieve("message -> passages: list[str]", { corpus: ["a"] }))
      .stage("classify", classify)
      .output("label", "classify.category")
      .output("context", "faq.passages")
      .build();
    expectTypeOf<ProgramOutputs<typeof built>>().toEqualTypeOf<{
      label: "billing" | "technical";
      context: string[];
    }>();
    expect(built.outputs).toEqual({ label: "classify.category", context: "faq.passages" });
  });

  it("type an execute result's outputs when the request names the built program", () => {
    const built = program("typed-execute").input("message: str").stage("classify", classify).build();
    type Result = Awaited<ReturnType<Dspex["execute"]>>;
    const outputsOf = (result: Awaited<ReturnType<typeof execute>>) =>
      result.type === "ExecutionCompleted" ? result.data.outputs : undefined;
    const execute = (dspex: Dspex) => dspex.execute({ program: built, inputs: { message: "hi" } });
    expectTypeOf(outputsOf).returns.toEqualTypeOf<
      { category: "billing" | "technical"; confidence: number } | undefined
    >();
    // By id alone, the outputs are untyped.
    expectTypeOf<Extract<Result, { type: "ExecutionCompleted" }>["data"]["outputs"]>().toEqualTypeOf<
      Record<string, unknown>
    >();
    expect(built.programId).toBe("typed-execute");
  });
});
