import { describe, expect, it } from "vitest";
import { adoptionOrder } from "../../../processors/optimizers/adopt.ts";
import { breaches } from "../../../programs/variables/constraints.ts";
import { VariableConstraint } from "../../../streams/events/index.ts";

// The small model only runs cool: "qa.temperature" <= 0.5 whenever "qa.model" is "small".
const cool = VariableConstraint.parse({
  name: "cool small model",
  when: { model: ["small"] },
  require: { variable: "temperature", op: "<=", than: 0.5 },
});
const current: Readonly<Record<string, unknown>> = { "qa.model": "big", "qa.temperature": 1 };
const keeps = (applied: Readonly<Record<string, unknown>>) =>
  breaches([cool], (name) => ({ ...current, ...applied })[`qa.${name}`]).length === 0;

describe("adopting a winner one variable at a time", () => {
  it("proposes the changes in an order where every step keeps the constraints", () => {
    const order = adoptionOrder(
      [
        ["qa.model", "small"],
        ["qa.temperature", 0.2],
      ],
      keeps,
    );
    expect(order.map(([id]) => id)).toEqual(["qa.temperature", "qa.model"]);
  });

  it("keeps the winner's order when it already keeps them", () => {
    const order = adoptionOrder(
      [
        ["qa.temperature", 0.2],
        ["qa.model", "small"],
      ],
      keeps,
    );
    expect(order.map(([id]) => id)).toEqual(["qa.temperature", "qa.model"]);
  });

  it("proposes every change, in the winner's order, when no order keeps them at each step", () => {
    const warm = VariableConstraint.parse({
      name: "warm big model",
      when: { model: ["big"] },
      require: { variable: "temperature", op: ">=", than: 0.8 },
    });
    const keepsBoth = (applied: Readonly<Record<string, unknown>>) =>
      breaches([cool, warm], (name) => ({ ...current, ...applied })[`qa.${name}`]).length === 0;
    const winner = [
      ["qa.model", "small"],
      ["qa.temperature", 0.2],
    ] as const;
    expect(keepsBoth(Object.fromEntries(winner))).toBe(true);
    expect(adoptionOrder(winner, keepsBoth)).toEqual(winner);
  });
});
