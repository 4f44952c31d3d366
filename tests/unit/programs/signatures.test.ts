import { describe, expect, it } from "vitest";
import { SignatureSyntaxError, signature, signatureOf } from "../../../programs/signatures/index.ts";
import { SignatureSpec } from "../../../streams/events/common.ts";

const syntaxError = (text: string): SignatureSyntaxError => {
  try {
    signature(text);
  } catch (error) {
    if (error instanceof SignatureSyntaxError) return error;
    throw error;
  }
  throw new Error(`expected ${text} to be refused`);
};

describe("signature parsing", () => {
  it("reads untyped fields as str", () => {
    const { spec } = signature("question, context -> answer");
    expect(spec).toEqual({
      instructions: "",
      inputs: [
        { name: "question", type: "str", optional: false },
        { name: "context", type: "str", optional: false },
      ],
      outputs: [{ name: "answer", type: "str", optional: false }],
    });
    expect(SignatureSpec.parse(spec)).toEqual(spec);
  });

  it("reads every type in its canonical spelling", () => {
    const { spec } = signature(
      "a: str, b: int, c: float, d: bool, e: List[int], f: dict, g: dict[str, float], h: list[list[str]] -> " +
        "i: Literal['x', \"y\", 3, true], j: embedding, k: probability, l: confidence, m: list",
    );
    expect([...spec.inputs, ...spec.outputs].map((f) => f.type)).toEqual([
      "str",
      "int",
      "float",
      "bool",
      "list[int]",
      "dict",
      "dict[str, float]",
      "list[list[str]]",
      'Literal["x", "y", 3, true]',
      "embedding",
      "probability",
      "confidence",
      "list[str]",
    ]);
  });

  it("reads optional fields, defaults, descriptions and constraints", () => {
    const { spec } = signature(
      `q?: str, r: Optional[int], k: int(min=1, max=10) = 3 "how many", tags: list[str](min_items=1, max_items=3) = ["a"] -> ` +
        `answer: str(min_length=1, max_length=200, pattern="^[A-Z]") "one sentence", v: embedding(dim=4)`,
    );
    expect(spec.inputs).toEqual([
      { name: "q", type: "str", optional: true },
      { name: "r", type: "int", optional: true },
      {
        name: "k",
        type: "int",
        optional: false,
        constraints: { min: 1, max: 10 },
        default: 3,
        description: "how many",
      },
      {
        name: "tags",
        type: "list[str]",
        optional: false,
        constraints: { minItems: 1, maxItems: 3 },
        default: ["a"],
      },
    ]);
    expect(spec.outputs[0]).toEqual({
      name: "answer",
      type: "str",
      optional: false,
      constraints: { minLength: 1, maxLength: 200, pattern: "^[A-Z]" },
      description: "one sentence",
    });
    expect(spec.outputs[1]!.constraints).toEqual({ dimensions: 4 });
  });

  it("takes instructions from a leading string or from the argument", () => {
    expect(signature('"Answer in one word." question -> answer').spec.instructions).toBe(
      "Answer in one word.",
    );
    expect(signature("question -> answer", "Be brief.").spec.instructions).toBe("Be brief.");
  });

  it("returns the same parsed signature for the same text (cache)", () => {
    expect(signature("x -> y")).toBe(signature("x -> y"));
  });

  it("round-trips through the wire form", () => {
    const text = "q: str(max_length=5), n?: int = 2 -> label: Literal['a','b'], p: probability(min=0.1)";
    const fromWire = signatureOf(JSON.parse(JSON.stringify(signature(text).spec)));
    expect(fromWire.spec).toEqual(signature(text).spec);
    expect(fromWire.validateInputs({ q: "toolong" }).ok).toBe(false);
    expect(fromWire.validateOutputs({ label: "a", p: 0.05 })).toMatchObject({
      errors: ["p must be between 0.1 and 1"],
    });
  });

  it.each([
    ["question -> ", 13, "expected at least one output field"],
    [" -> answer", 2, "expected at least one input field"],
    ["question answer", 10, 'expected "," or "->" after the input fields, found "answer"'],
    ["q: strr -> a", 4, 'unknown type "strr"'],
    ["q: -> a", 4, 'expected a type, found "->"'],
    ["q, q -> a", 4, 'field "q" is declared twice'],
    ["q -> q", 1, 'field "q" is both an input and an output'],
    ["q -> a: Literal['a'", 20, 'expected "]" to close Literal[, found the end'],
    ["q -> a: Literal['a', 'a']", 22, 'Literal value "a" is repeated'],
    ["q -> a: Literal[[1]]", 17, "Literal values must be strings, numbers or booleans"],
    ["q -> a: int(max_length=3)", 13, 'constraint "max_length" does not apply to int'],
    ["q -> a: str(size=3)", 13, 'unknown constraint "size"'],
    ["q -> a: str(min_length=3, min_length=4)", 27, 'constraint "min_length" is given twice'],
    ["q -> a: str(min_length=5, max_length=4)", 27, "min_length > max_length"],
    ["q -> a: str(max_length=-1)", 24, "max_length must be a non-negative integer"],
    ["q -> a: str(pattern=3)", 21, "pattern must be a quoted string"],
    ["q -> a: str(pattern='(')", 21, "pattern is not a valid regular expression"],
    ["q -> a: int(min='x')", 17, "min must be a number"],
    ["q -> a: probability(max=2)", 21, "probability bounds must lie within 0..1"],
    ["q -> a: confidence(min=-1)", 20, "confidence min must be ≥ 0"],
    ["q -> a: embedding(dim=0)", 23, "dim must be positive"],
    ["q -> a: dict[int, str]", 14, 'dict keys must be str, found "int"'],
    ["q -> a: list[Optional[str]]", 9, "list items cannot be Optional"],
    ["q: int = 'x' -> a", 10, "default of q must be an integer"],
    ["q: int(max=3) = 5 -> a", 17, "default of q must be at most 3"],
    ["q -> a: str 'unterminated", 13, "unterminated string"],
    ["q -> a, ", 9, "expected a field name, found the end"],
    ["q -> a extra", 8, 'expected "," or the end, found "extra"'],
    ["q -> a: str(pattern=)", 21, 'expected a value, found ")"'],
    ["q -> a: int(min=--1)", 17, 'expected a number, found "--1)"'],
    ["q: float(min=0.5, max=0.1) -> a", 19, "min > max"],
    ["q -> a: dict[str]", 17, 'expected "," between the dict key and value types, found "]"'],
    ["q -> a: str(min_length=2 x)", 26, 'expected ")" to close the constraints, found "x)"'],
    [`q -> a: ${"list[".repeat(40)}str${"]".repeat(40)}`, 174, "types nest deeper than 32 levels"],
    [`q -> a: Literal[${"[".repeat(40)}]`, 50, "values nest deeper than 32 levels"],
  ])("refuses %j at column %i: %s", (text, column, reason) => {
    const error = syntaxError(text);
    expect(error.column).toBe(column);
    expect(error.reason).toContain(reason);
    expect(error.message).toContain(`column ${column}: ${reason}`);
  });

  it("names the field of a bad wire type", () => {
    expect(() =>
      signatureOf({
        instructions: "",
        inputs: [{ name: "q", type: "lst[str]", optional: false }],
        outputs: [{ name: "a", type: "str", optional: false }],
      }),
    ).toThrow('type of q: unknown type "lst"');
  });
});

describe("validating values against a signature", () => {
  const qa = signature(
    "question: str(min_length=1, max_length=10, pattern='\\?$'), context: list[str](max_items=2), k: int(min=1, max=5) = 3, " +
      "strict?: bool, meta: dict[str, int] = {} -> answer: str, label: Literal['yes', 'no'], p: probability, c: confidence, v: embedding(dim=2), n: float(min=-1)",
  );
  const goodInputs = { question: "why?", context: ["a"] };
  const goodOutputs = { answer: "x", label: "yes", p: 0.5, c: 3, v: [0.1, 0.2], n: 0 };

  it("accepts valid values and fills defaults", () => {
    expect(qa.validateInputs(goodInputs)).toEqual({ ok: true, value: { ...goodInputs, k: 3, meta: {} } });
    expect(qa.validateInputs({ ...goodInputs, strict: null }).ok).toBe(true);
    expect(qa.validateOutputs(goodOutputs).ok).toBe(true);
    expect(qa.validateOutputs({ ...goodOutputs, p: 0, c: 0 }).ok).toBe(true);
    expect(qa.validateOutputs({ ...goodOutputs, p: 1 }).ok).toBe(true);
  });

  it.each([
    [{ context: [] }, "question is required"],
    [{ ...goodInputs, question: 3 }, "question must be a string"],
    [{ ...goodInputs, question: "" }, "question must be at least 1 character"],
    [{ ...goodInputs, question: "much too long?" }, "question must be at most 10 characters"],
    [{ ...goodInputs, question: "no mark" }, "question must match /\\?$/"],
    [{ ...goodInputs, context: "a" }, "context must be a list"],
    [{ ...goodInputs, context: ["a", 2] }, "context[1] must be a string"],
    [{ ...goodInputs, context: ["a", "b", "c"] }, "context must have at most 2 items"],
    [{ ...goodInputs, k: 2.5 }, "k must be an integer"],
    [{ ...goodInputs, k: 0 }, "k must be between 1 and 5"],
    [{ ...goodInputs, k: "3" }, "k must be an integer"],
    [{ ...goodInputs, strict: "yes" }, "strict must be a boolean"],
    [{ ...goodInputs, meta: [] }, "meta must be an object"],
    [{ ...goodInputs, meta: { a: "1" } }, "meta.a must be an integer"],
    [null, "inputs must be an object"],
    ["text", "inputs must be an object"],
  ])("refuses inputs %j: %s", (inputs, message) => {
    const result = qa.validateInputs(inputs);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors).toContain(message);
  });

  it.each([
    [{ ...goodOutputs, label: "maybe" }, 'label must be one of "yes", "no"'],
    [{ ...goodOutputs, p: 1.01 }, "p must be between 0 and 1"],
    [{ ...goodOutputs, p: -0.1 }, "p must be between 0 and 1"],
    [{ ...goodOutputs, p: "high" }, "p must be a probability (a number between 0 and 1)"],
    [{ ...goodOutputs, c: -1 }, "c must be at least 0"],
    [{ ...goodOutputs, v: [1] }, "v must have exactly 2 dimensions"],
    [{ ...goodOutputs, v: [] }, "v must have at least 1 dimension"],
    [{ ...goodOutputs, v: [1, "x"] }, "v[1] must be a number"],
    [{ ...goodOutputs, v: "x" }, "v must be an embedding (a list of numbers)"],
    [{ ...goodOutputs, n: -2 }, "n must be at least -1"],
    [{ ...goodOutputs, n: Number.POSITIVE_INFINITY }, "n must be a number"],
  ])("refuses outputs %j: %s", (outputs, message) => {
    const result = qa.validateOutputs(outputs);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors).toContain(message);
  });

  it("checks item counts at both ends", () => {
    const counted = signature("q -> tags: list[str](min_items=2, max_items=3)");
    expect(counted.validateOutputs({ tags: ["a", "b"] }).ok).toBe(true);
    expect(counted.validateOutputs({ tags: ["a"] })).toMatchObject({
      errors: ["tags must have at least 2 items"],
    });
    expect(counted.validateOutputs({ tags: ["a", "b", "c", "d"] })).toMatchObject({
      errors: ["tags must have at most 3 items"],
    });
  });

  it("reports every problem at once, joined in the message", () => {
    const result = qa.validateInputs({ question: 1, context: 2 });
    expect(result).toEqual({
      ok: false,
      errors: ["question must be a string", "context must be a list"],
      message: "question must be a string; context must be a list",
    });
  });
});
