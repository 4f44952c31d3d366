import { describe, expect, it } from "vitest";
import { setupOf } from "../../../processors/optimizers/setup.ts";
import { dspy, program } from "../../../programs/builder.ts";
import type { EventOf } from "../../../streams/events/index.ts";

const hinted = program("hinted")
  .input("q")
  .stage("a", dspy.predict("q -> x"))
  .hint({ optimizer: "simba", budget: { maxCalls: 800 } })
  .hint({ priority: 2 })
  .build();

const request = (overrides: Partial<EventOf<"OptimizationRequested">["data"]> = {}) => ({
  optimizationId: "o1",
  programId: "hinted",
  variables: [],
  trainset: [{ id: "t", inputs: { q: "a" }, expected: { x: "b" } }],
  devset: [{ id: "d", inputs: { q: "a" }, expected: { x: "b" } }],
  metric: { name: "exact_match", params: {} },
  budget: {},
  seed: 0,
  params: {},
  ...overrides,
});

describe("a program's optimization hints", () => {
  it("land in its definition, merged in the order given", () => {
    expect(hinted.hints).toEqual({ optimizer: "simba", budget: { maxCalls: 800 }, priority: 2 });
    expect(program("plain").input("q").stage("a", dspy.predict("q -> x")).build()).not.toHaveProperty(
      "hints",
    );
  });

  it("are what a request that names no optimizer or budget runs with", () => {
    const setup = setupOf(request(), hinted);
    expect(setup.optimizer).toBe("simba");
    expect(setup.budget).toEqual({ maxTrials: undefined, maxCalls: 800 });
  });

  it("give way to what the request names, and to bootstrap without any", () => {
    const setup = setupOf(request({ optimizer: "random", budget: { maxCalls: 100, maxTrials: 4 } }), hinted);
    expect(setup).toMatchObject({ optimizer: "random", budget: { maxCalls: 100, maxTrials: 4 } });
    const plain = program("plain").input("q").stage("a", dspy.predict("q -> x")).build();
    expect(setupOf(request({ programId: "plain" }), plain).optimizer).toBe("bootstrap");
  });

  it("refuses an optimizer dspex does not have", () => {
    expect(() => program("p").hint({ optimizer: "grid" as never })).toThrow(/optimizer/);
  });
});
