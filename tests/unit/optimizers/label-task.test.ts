import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { pyRandom } from "../../../processors/optimizers/py-random.ts";
import type { JsonRecord } from "../../../streams/events/index.ts";
import { labelTaskAnswer, labelTaskRules } from "../../support/label-task.ts";

const vectors = JSON.parse(readFileSync(new URL("./label-task.vectors.json", import.meta.url), "utf8")) as {
  rules: unknown[];
  cases: { inputs: JsonRecord; overrides: JsonRecord; answer: string }[];
};

describe("the label task's test LM in TypeScript", () => {
  it("has the Python test LM's rules", () => {
    expect(labelTaskRules()).toEqual(vectors.rules);
  });

  it("answers every vector as the Python test LM does (demos, rules in the instructions, sampling, wrong)", () => {
    const answers = vectors.cases.map((c) => labelTaskAnswer(c.inputs, c.overrides));
    expect(answers).toEqual(vectors.cases.map((c) => c.answer));
    // The vectors cover each branch.
    expect(new Set(answers).size).toBeGreaterThan(6);
  });
});

describe("CPython's random.Random in TypeScript (values printed by CPython 3.11)", () => {
  it.each([
    [
      0,
      [0.8444218515250481, 97, 26],
      [2, 16, 32, 31],
      [6, 4, 7, 2, 8, 1, 5],
      [3, 8, 9, 6, 5, 0, 7, 10, 11, 1, 2, 4],
    ],
    [
      42,
      [0.6394267984578837, 3, 17],
      [15, 14, 8, 6],
      [8, 1, 6, 0, 7, 5, 9],
      [2, 1, 10, 7, 4, 6, 5, 11, 0, 9, 8, 3],
    ],
    [
      2 ** 33 + 5,
      [0.7416304072852293, 92, 10],
      [32, 20, 18, 27],
      [2, 5, 3, 7, 4, 6, 9],
      [0, 4, 7, 6, 9, 11, 5, 8, 3, 10, 2, 1],
    ],
  ])(
    "seed %d: random, getrandbits, randbelow, sample (both algorithms), shuffle",
    (seed, first, big, small, shuffled) => {
      const random = pyRandom(seed);
      expect([random.random(), random.getrandbits(7), random.randbelow(36)]).toEqual(first);
      const range = (n: number) => Array.from({ length: n }, (_, i) => i);
      expect(random.sample(range(36), 4)).toEqual(big);
      expect(random.sample(range(10), 7)).toEqual(small);
      expect(random.shuffled(range(12))).toEqual(shuffled);
    },
  );
});
