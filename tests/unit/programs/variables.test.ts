import { describe, expect, it } from "vitest";
import { signature } from "../../../programs/signatures/index.ts";
import {
  cardinalityOf,
  checkDeclaration,
  deriveVariables,
  SamplingExhaustedError,
  seededRandom,
  VariableSpaceError,
  validateValue,
  variableSpace,
  variableSpec,
} from "../../../programs/variables/index.ts";
import type { VariableDeclaration } from "../../../streams/events/variables.ts";

const reasonOf = (name: string, spec: Parameters<typeof variableSpec>[0], value: unknown) => {
  const check = validateValue(name, variableSpec(spec), value);
  return check.ok ? "ok" : check.reason;
};

describe("variable types", () => {
  it.each([
    [{ kind: "float", min: 0, max: 2 }, 0, "ok"],
    [{ kind: "float", min: 0, max: 2 }, 2, "ok"],
    [{ kind: "float", min: 0, max: 2 }, 2.0001, "t must be between 0 and 2 (got 2.0001)"],
    [{ kind: "float", min: 0, max: 2 }, -0.5, "t must be between 0 and 2 (got -0.5)"],
    [{ kind: "float", min: 0, max: 2 }, "1", 't must be a number (got "1")'],
    [{ kind: "float", min: 0, max: 2 }, Number.NaN, "t must be a number (got NaN)"],
    [{ kind: "float", min: 0, max: 2 }, Number.POSITIVE_INFINITY, "t must be a number (got Infinity)"],
    [{ kind: "float", min: 1, max: 1 }, 1, "ok"],
    [{ kind: "float", min: -1, max: 1 }, -1, "ok"],
    [
      { kind: "float", min: 0, max: 1, precision: 1 },
      0.1 + 0.2,
      "t must have at most 1 decimal place (got 0.30000000000000004)",
    ],
    [
      { kind: "float", min: 0, max: 1, precision: 10 },
      1.5e-10,
      "t must have at most 10 decimal places (got 1.5e-10)",
    ],
    [{ kind: "float", min: 0, max: 1, precision: 11 }, 1.5e-10, "ok"],
    [{ kind: "float", min: 0, max: 2 }, null, "t must be a number (got null)"],
    [{ kind: "float", min: 0, max: 2, precision: 1 }, 0.7, "ok"],
    [{ kind: "float", min: 0, max: 2, precision: 1 }, 0.75, "t must have at most 1 decimal place (got 0.75)"],
    [{ kind: "float", min: 0, max: 1, precision: 0 }, 1, "ok"],
    [
      { kind: "float", min: 0, max: 1, precision: 2 },
      1e-7,
      "t must have at most 2 decimal places (got 1e-7)",
    ],
    [{ kind: "integer", min: 64, max: 1024, step: 64 }, 64, "ok"],
    [{ kind: "integer", min: 64, max: 1024, step: 64 }, 1024, "ok"],
    [{ kind: "integer", min: 64, max: 1024, step: 64 }, 100, "t must be 64 plus a multiple of 64 (got 100)"],
    [{ kind: "integer", min: 64, max: 1024, step: 64 }, 1088, "t must be between 64 and 1024 (got 1088)"],
    [{ kind: "integer", min: 1, max: 5 }, 2.5, "t must be an integer (got 2.5)"],
    [{ kind: "integer", min: 1, max: 5 }, 0, "t must be between 1 and 5 (got 0)"],
    [{ kind: "integer", min: 1, max: 5 }, "3", 't must be an integer (got "3")'],
    [{ kind: "integer", min: -5, max: 5, step: 5 }, 0, "ok"],
    [{ kind: "integer", min: -5, max: 5, step: 5 }, 2, "t must be -5 plus a multiple of 5 (got 2)"],
    [{ kind: "integer", min: 0, max: 10, step: 3 }, 9, "ok"],
    [{ kind: "integer", min: 0, max: 10, step: 3 }, 10, "t must be 0 plus a multiple of 3 (got 10)"],
    [{ kind: "choice", choices: ["a", "b"] }, "b", "ok"],
    [{ kind: "choice", choices: ["a", "b"] }, "c", 't must be one of "a", "b" (got "c")'],
    [{ kind: "choice", choices: [{ k: 1 }, { k: 2 }] }, { k: 2 }, "ok"],
    [{ kind: "choice", choices: [{ k: 1 }] }, { k: 1, j: 2 }, 't must be one of {"k":1} (got {"k":1,"j":2})'],
    [{ kind: "choice", choices: ["a"], allowCustom: true }, "zzz", "ok"],
    [{ kind: "choice", choices: ["a"], allowCustom: true }, { any: ["json"] }, "ok"],
    [{ kind: "choice", choices: [null, 1] }, null, "ok"],
    [{ kind: "choice", choices: [1, 2] }, "1", 't must be one of 1, 2 (got "1")'],
    [{ kind: "choice", choices: [[1, 2]] }, [2, 1], "t must be one of [1,2] (got [2,1])"],
    [{ kind: "module", choices: ["Predict"] }, "predict", 't must be one of "Predict" (got "predict")'],
    [{ kind: "module", choices: ["Predict", "ChainOfThought"] }, "ChainOfThought", "ok"],
    [
      { kind: "module", choices: ["openai/gpt-4o-mini"] },
      "gpt-5",
      't must be one of "openai/gpt-4o-mini" (got "gpt-5")',
    ],
    [{ kind: "module", choices: ["Predict"] }, 3, "t must be a module or model name (got 3)"],
    [{ kind: "text", maxLength: 5 }, "hello", "ok"],
    [{ kind: "text", maxLength: 5 }, "hello!", "t must be at most 5 characters (got 6)"],
    [{ kind: "text" }, 5, "t must be a string (got 5)"],
    [{ kind: "text", maxLength: 1 }, "", "ok"],
    [{ kind: "text", maxLength: 1 }, "ab", "t must be at most 1 character (got 2)"],
    [{ kind: "demos", maxItems: 0 }, [], "ok"],
    [{ kind: "demos", maxItems: 1 }, [{}, {}], "t must have at most 1 demo (got 2)"],
    [{ kind: "demos" }, [null], "t[0] must be an object of field values (got null)"],
    [{ kind: "demos" }, [[1]], "t[0] must be an object of field values (got [1])"],
    [{ kind: "composite", dependsOn: ["a"], compute: "sum" }, "anything", "ok"],
    [{ kind: "demos", maxItems: 2 }, [{ q: "a" }, { q: "b" }], "ok"],
    [{ kind: "demos", maxItems: 2 }, [{}, {}, {}], "t must have at most 2 demos (got 3)"],
    [{ kind: "demos" }, [{ q: 1 }, "x"], 't[1] must be an object of field values (got "x")'],
    [{ kind: "demos" }, { q: 1 }, 't must be a list of demos (got {"q":1})'],
  ] as const)("%j takes %j: %s", (spec, value, expected) => {
    expect(reasonOf("t", spec as never, value)).toBe(expected);
  });

  it("checks a declaration's spec and initial value", () => {
    expect(checkDeclaration("t", variableSpec({ kind: "float", min: 2, max: 1 }), 1)).toEqual({
      ok: false,
      reason: "t: min 2 is greater than max 1",
    });
    expect(checkDeclaration("m", variableSpec({ kind: "module", choices: ["a", "a"] }), "a")).toEqual({
      ok: false,
      reason: 'm: choice "a" is repeated',
    });
    expect(checkDeclaration("n", variableSpec({ kind: "integer", min: 5, max: 1 }), 3)).toEqual({
      ok: false,
      reason: "n: min 5 is greater than max 1",
    });
    expect(
      checkDeclaration("c", variableSpec({ kind: "choice", choices: [{ k: 1 }, { k: 1 }] }), { k: 1 }),
    ).toEqual({
      ok: false,
      reason: 'c: choice {"k":1} is repeated',
    });
    expect(
      checkDeclaration("x", variableSpec({ kind: "composite", dependsOn: ["a"], compute: "sum" }), null),
    ).toEqual({ ok: true });
    expect(checkDeclaration("t", variableSpec({ kind: "float", min: 0, max: 1 }), 3)).toEqual({
      ok: false,
      reason: "t must be between 0 and 1 (got 3)",
    });
  });

  it("counts the values each type can take", () => {
    expect(cardinalityOf(variableSpec({ kind: "float", min: 0, max: 1 }))).toBe(Number.POSITIVE_INFINITY);
    expect(cardinalityOf(variableSpec({ kind: "float", min: 0, max: 1, precision: 1 }))).toBe(11);
    expect(cardinalityOf(variableSpec({ kind: "integer", min: 64, max: 1024, step: 64 }))).toBe(16);
    expect(cardinalityOf(variableSpec({ kind: "choice", choices: [1, 2, 3] }))).toBe(3);
    expect(cardinalityOf(variableSpec({ kind: "text" }))).toBe(1);
    expect(cardinalityOf(variableSpec({ kind: "float", min: 1, max: 1, precision: 2 }))).toBe(1);
    expect(cardinalityOf(variableSpec({ kind: "integer", min: 0, max: 10, step: 3 }))).toBe(4);
    expect(cardinalityOf(variableSpec({ kind: "integer", min: -5, max: 5 }))).toBe(11);
    expect(cardinalityOf(variableSpec({ kind: "module", choices: ["Predict", "ReAct"] }))).toBe(2);
    expect(cardinalityOf(variableSpec({ kind: "demos" }))).toBe(1);
    expect(cardinalityOf(variableSpec({ kind: "composite", dependsOn: ["a"], compute: "sum" }))).toBe(1);
  });
});

const declarations: VariableDeclaration[] = [
  { name: "temperature", spec: variableSpec({ kind: "float", min: 0, max: 1, precision: 1 }), initial: 0.5 },
  {
    name: "max_tokens",
    spec: variableSpec({ kind: "integer", min: 100, max: 500, step: 100 }),
    initial: 200,
  },
  { name: "reserve", spec: variableSpec({ kind: "integer", min: 0, max: 300, step: 100 }), initial: 100 },
  { name: "model", spec: variableSpec({ kind: "module", choices: ["small", "large"] }), initial: "small" },
  { name: "instructions", spec: variableSpec({ kind: "text" }), initial: "Be brief." },
  {
    name: "budget",
    spec: { kind: "composite", dependsOn: ["max_tokens", "reserve"], compute: "sum" },
    initial: null,
  },
];

describe("variable spaces", () => {
  it("computes composites in dependency order and reports dimensionality", () => {
    const space = variableSpace([
      {
        name: "total",
        spec: { kind: "composite", dependsOn: ["budget", "max_tokens"], compute: "sum" },
        initial: null,
      },
      ...declarations,
    ]);
    expect(space.order.indexOf("total")).toBeGreaterThan(space.order.indexOf("budget"));
    expect(space.defaults()).toMatchObject({ budget: 300, total: 500 });
    expect(space.dimensionality()).toEqual({
      searchable: 4,
      continuous: 0,
      discrete: 4,
      fixed: 1,
      computed: 2,
      combinations: 11 * 5 * 4 * 2,
    });
  });

  it("refuses an unknown dependency, a cycle, an unknown compute, a repeated name, a bad initial value", () => {
    const composite = (name: string, dependsOn: string[], compute = "sum"): VariableDeclaration => ({
      name,
      spec: { kind: "composite", dependsOn, compute },
      initial: null,
    });
    expect(() => variableSpace([composite("a", ["ghost"])])).toThrow('a depends on unknown variable "ghost"');
    expect(() =>
      variableSpace([composite("a", ["b"]), composite("b", ["c"]), composite("c", ["a"])]),
    ).toThrow("dependency cycle: a -> b -> c -> a");
    expect(() => variableSpace([composite("a", ["a"])])).toThrow("dependency cycle: a -> a");
    expect(() => variableSpace([...declarations, composite("x", ["reserve"], "magic")])).toThrow(
      'x uses unknown compute function "magic"',
    );
    expect(() => variableSpace([declarations[0]!, declarations[0]!])).toThrow(
      'variable "temperature" is declared twice',
    );
    expect(() => variableSpace([{ ...declarations[0]!, initial: 7 }])).toThrow(
      "invalid declaration: temperature must be between 0 and 1 (got 7)",
    );
    expect(() => variableSpace([composite("a", ["ghost"])])).toThrow(VariableSpaceError);
  });

  it("checks configurations: values, composites that cannot be set, unknown names, cross constraints", () => {
    const space = variableSpace(declarations, {
      constraints: [
        {
          name: "large_needs_tokens",
          check: (c) =>
            c.model !== "large" || (c.max_tokens as number) >= 300 || "the large model needs ≥ 300 tokens",
        },
      ],
    });
    expect(space.check({ model: "large", max_tokens: 400 })).toMatchObject({
      ok: true,
      configuration: { budget: 500 },
    });
    expect(space.check({ model: "large" })).toEqual({
      ok: false,
      errors: ["large_needs_tokens: the large model needs ≥ 300 tokens"],
    });
    expect(space.check({ budget: 3, nope: 1, temperature: 2 })).toEqual({
      ok: false,
      errors: [
        "budget is computed from max_tokens, reserve and cannot be set",
        'unknown variable "nope"',
        "temperature must be between 0 and 1 (got 2)",
      ],
    });
  });

  it("samples the same configurations from the same seed, every one valid", () => {
    const space = variableSpace(declarations, {
      constraints: [{ name: "fits", check: (c) => (c.budget as number) <= 500 || "over budget" }],
    });
    const first = Array.from({ length: 20 }, (_, i) => space.sample(seededRandom(i)));
    const again = Array.from({ length: 20 }, (_, i) => space.sample(i));
    expect(again).toEqual(first);
    for (const c of first) {
      const { budget: _, ...values } = c;
      expect(space.check(values).ok).toBe(true);
      expect(c.budget as number).toBeLessThanOrEqual(500);
      expect(c.instructions).toBe("Be brief.");
    }
    expect(new Set(first.map((c) => JSON.stringify(c))).size).toBeGreaterThan(5);
    expect(space.sample(3, { fixed: { model: "large" } }).model).toBe("large");
  });

  it("refuses defaults that break a cross-variable constraint", () => {
    const space = variableSpace(declarations, {
      constraints: [{ name: "small_budget", check: (c) => (c.budget as number) < 100 || "budget over 100" }],
    });
    expect(() => space.defaults()).toThrow(VariableSpaceError);
    expect(() => space.defaults()).toThrow(
      "the initial values break the space: small_budget: budget over 100",
    );
  });

  it("samples only values on the grid: integer steps, float precision, within bounds", () => {
    const space = variableSpace([
      { name: "n", spec: variableSpec({ kind: "integer", min: -5, max: 10, step: 5 }), initial: 0 },
      { name: "p", spec: variableSpec({ kind: "float", min: 0.1, max: 0.3, precision: 1 }), initial: 0.2 },
    ]);
    const samples = Array.from({ length: 200 }, (_, i) => space.sample(i));
    expect(new Set(samples.map((c) => c.n))).toEqual(new Set([-5, 0, 5, 10]));
    expect(new Set(samples.map((c) => c.p))).toEqual(new Set([0.1, 0.2, 0.3]));
  });

  it("gives up with a clear error when no sample satisfies the constraints", () => {
    const space = variableSpace(declarations, {
      constraints: [{ name: "impossible", check: () => "never" }],
    });
    expect(() => space.sample(1, { maxAttempts: 7 })).toThrow(SamplingExhaustedError);
    expect(() => space.sample(1, { maxAttempts: 7 })).toThrow(
      "no configuration satisfied the constraints in 7 attempts (impossible rejected 7)",
    );
  });
});

describe("variables derived from signatures", () => {
  it("turns a probability output into a threshold and a confidence output into a minimum", () => {
    const derived = deriveVariables(
      signature("text -> spam: probability, sure: confidence, p2: probability(min=0.6, max=0.9), label").spec,
    );
    expect(derived.map((d) => [d.name, d.spec, d.initial])).toEqual([
      ["spam_threshold", { kind: "float", min: 0, max: 1, precision: 2 }, 0.5],
      ["sure_min", { kind: "float", min: 0, max: 1, precision: 2 }, 0],
      ["p2_threshold", { kind: "float", min: 0.6, max: 0.9, precision: 2 }, 0.6],
    ]);
    expect(variableSpace(derived).dimensionality().searchable).toBe(3);
  });
});
