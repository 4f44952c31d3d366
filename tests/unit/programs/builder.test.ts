import { describe, expect, it } from "vitest";
import { dspy, native, program, v } from "../../../programs/builder.ts";
import { declareProgram } from "../../../programs/registry.ts";
import { ProgramDefinition, ProgramRegistered } from "../../../streams/events/variables.ts";

const triage = () =>
  program("triage")
    .description("route support messages")
    .input("message: str(min_length=1), channel?: str")
    .variable("model", v.model(["openai/gpt-4o-mini", "ollama/llama3"]))
    .stage("context", native.retrieve("message -> passages: list[str]", { k: 3 }))
    .stage(
      "classify",
      dspy.predict("message, passages: list[str] -> label: Literal['bug', 'question'], p: probability"),
      {
        dependsOn: ["context"],
        variables: { temperature: v.temperature(0.2), demos: v.demos(8) },
      },
    )
    .stage("reply", dspy.chainOfThought("message, label -> reply: str(max_length=500)"), {
      bindings: { label: "classify.label" },
      variables: { max_tokens: v.maxTokens(256) },
    });

describe("program builder", () => {
  it("builds a JSON-serialisable ProgramDefinition with bindings resolved", () => {
    const definition = triage().output("reply", "reply.reply").build();
    expect(ProgramDefinition.parse(JSON.parse(JSON.stringify(definition)))).toEqual(definition);
    expect(definition.inputs.map((f) => [f.name, f.optional])).toEqual([
      ["message", false],
      ["channel", true],
    ]);
    const [context, classify, reply] = definition.stages;
    expect(context).toMatchObject({
      runtime: "native",
      module: "retrieve",
      config: { k: 3 },
      bindings: { message: "input.message" },
    });
    expect(classify!.bindings).toEqual({ message: "input.message", passages: "context.passages" });
    expect(classify!.variables.map((d) => d.name)).toEqual(["temperature", "demos"]);
    expect(reply).toMatchObject({
      dependsOn: ["classify"],
      bindings: { label: "classify.label", message: "input.message" },
    });
    expect(definition.outputs).toEqual({ reply: "reply.reply" });
    expect(definition.variables).toEqual([
      {
        name: "model",
        spec: { kind: "module", choices: ["openai/gpt-4o-mini", "ollama/llama3"] },
        initial: "openai/gpt-4o-mini",
      },
    ]);
  });

  it("defaults the outputs to the last stage's, and makes a ProgramRegistered event", () => {
    const event = triage().registered({ occurredAt: "2026-01-01T00:00:00.000Z" });
    expect(event).toMatchObject({ type: "ProgramRegistered", key: "triage", stream: "program-triage" });
    expect(event.data.outputs).toEqual({ reply: "reply.reply" });
    expect(ProgramRegistered.envelope.parse(JSON.parse(JSON.stringify(event)))).toEqual(event);
    expect(declareProgram(event.data).map((c) => c.variableId)).toEqual([
      "triage.model",
      "triage.classify.temperature",
      "triage.classify.demos",
      "triage.reply.max_tokens",
    ]);
  });

  it.each([
    [() => program("p").stage("a", dspy.predict("q -> a")), "program p: declare its inputs with .input(...)"],
    [() => program("p").input("q"), "program p: declare at least one stage"],
    [
      () => program("p").input("q").stage("a", dspy.predict("q -> a")).stage("a", dspy.predict("q -> b")),
      'program p: stage "a" is declared twice',
    ],
    [
      () =>
        program("p")
          .input("q")
          .stage("a", dspy.predict("q -> a"), { dependsOn: ["ghost"] }),
      'program p: stage "a" depends on unknown stage "ghost"',
    ],
    [
      () =>
        program("p")
          .input("q")
          .stage("a", dspy.predict("q -> x"), { dependsOn: ["b"] })
          .stage("b", dspy.predict("q -> y"), { dependsOn: ["a"] }),
      "program p: stage cycle: a -> b -> a",
    ],
    [
      () => program("p").input("q").stage("a", dspy.predict("q, z -> x")),
      'program p: stage "a" input z is bound to nothing',
    ],
    [
      () =>
        program("p")
          .input("q")
          .stage("a", dspy.predict("q -> x"), { bindings: { q: "input.nope" } }),
      'program p: stage "a" input q: "input.nope" names no program input',
    ],
    [
      () =>
        program("p")
          .input("q")
          .stage("a", dspy.predict("q -> x"))
          .stage("b", dspy.predict("y -> z"), { bindings: { y: "a.w" } }),
      'program p: stage "b" input y: stage "a" has no output "w"',
    ],
    [
      () => program("p").input("q").stage("a", dspy.predict("q -> x")).output("o", "a"),
      'program p: output o: "a" must be input.<field> or <stage>.<field>',
    ],
    [
      () =>
        program("p")
          .input("q")
          .variable("t", v.float(0, 1, 5))
          .stage("a", dspy.predict("q -> x")),
      "program p: invalid declaration: t must be between 0 and 1 (got 5)",
    ],
    [
      () =>
        program("p")
          .input("q")
          .stage("a", dspy.predict("q -> x"), { variables: { b: v.composite(["ghost"], "sum") } }),
      'program p: stage "a": b depends on unknown variable "ghost"',
    ],
    [
      () =>
        program("p")
          .input("q")
          .stage("a", dspy.retrieve("q -> passages: list[str]", { corpus: "faq" })),
      'program p: stage "a": a Retrieve stage needs config {passages | corpus, embedder, k?}: embedder:',
    ],
    [
      () =>
        program("p")
          .input("q")
          .stage(
            "a",
            dspy.retrieve("q -> passages: list[str]", {
              corpus: "faq",
              passages: ["x"],
              embedder: "dspex/test",
            }),
          ),
      "give either passages or corpus",
    ],
  ])("refuses a bad program (%#)", (make, message) => {
    expect(() => make().build()).toThrow(message);
  });

  it("adds the dependency a binding implies", () => {
    const definition = program("p")
      .input("q")
      .stage("a", dspy.predict("q -> x"))
      .stage("b", dspy.predict("y -> z"), { bindings: { y: "a.x" } })
      .build();
    expect(definition.stages[1]!.dependsOn).toEqual(["a"]);
  });
});

describe("constraints", () => {
  const base = () =>
    program("tuned")
      .input("question: str")
      .variable("model", v.model(["small", "large"]))
      .stage("answer", dspy.predict("question -> answer"), { variables: { maxTokens: v.maxTokens(1024) } });

  it("are part of the definition, naming program and stage variables", () => {
    const built = base()
      .constraint("short from the small model", {
        when: { model: ["small"] },
        require: { variable: "answer.maxTokens", op: "<=", than: 256 },
      })
      .build();
    expect(built.constraints).toEqual([
      {
        name: "short from the small model",
        when: { model: ["small"] },
        require: { variable: "answer.maxTokens", op: "<=", than: 256 },
      },
    ]);
  });

  it("naming an unknown variable fail the build, listing the known ones", () => {
    expect(() =>
      base()
        .constraint("typo", { require: { variable: "answer.maxTokns", op: "<=", than: 256 } })
        .build(),
    ).toThrow(
      'program tuned: constraint "typo" names no variable "answer.maxTokns" (known: model, answer.maxTokens)',
    );
  });
});
