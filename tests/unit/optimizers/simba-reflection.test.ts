import { describe, expect, it } from "vitest";
import { runOptimization } from "../../../processors/optimizers/driver.ts";
import { simba } from "../../../processors/optimizers/simba.ts";
import type { ReflectionRequest } from "../../../processors/optimizers/strategy.ts";
import { instructionsVariable, testLmAdvice } from "../../support/label-task.ts";
import { labelEvaluator, labelSetup, runOnLabelTask } from "./support.ts";

/** SIMBA with rules only (no demos), so every candidate goes through a reflection. */
const params = { bsize: 6, numCandidates: 3, maxSteps: 2, maxDemos: 0 };

describe("SIMBA's AppendRule as a reflection step", () => {
  it("asks for a reflection instead of building the candidate, and builds it from the answer folded into its state", async () => {
    const setup = labelSetup("simba", params, {}, 3);
    const asked: ReflectionRequest[] = [];
    const result = await runOptimization(setup, {
      strategy: {
        ...simba,
        // The pure state machine, observed: what it proposes after a reflection uses that reflection.
        propose(state, s, ctx) {
          const next = simba.propose(state, s, ctx);
          if (next && "reflect" in next) {
            expect(state.advice).toBeUndefined();
            expect(simba.propose(state, s, ctx)).toEqual(next);
          }
          if (next && "overrides" in next && state.advice && Object.keys(state.advice).length > 0)
            expect(String(next.overrides[instructionsVariable])).toContain(Object.values(state.advice)[0]);
          return next;
        },
      },
      evaluator: labelEvaluator(),
      reflector: {
        async reflect(request) {
          asked.push(request);
          return { advice: testLmAdvice(request), calls: 1 };
        },
      },
      record: async () => undefined,
    });
    expect(asked.length).toBeGreaterThan(0);
    // Each reflection has its own id on the log, derived from the optimization and the trial.
    expect(new Set(asked.map((r) => r.reflectionId)).size).toBe(asked.length);
    expect(result.calls).toBeGreaterThanOrEqual(asked.length);
    expect(result.accepted).toBe(true);
  });

  it("a reflection that advises nothing leaves the candidate as its source program", async () => {
    const reflecting = await runOnLabelTask("simba", { params, seed: 3 });
    const setup = labelSetup("simba", params, {}, 3);
    const result = await runOptimization(setup, {
      strategy: simba,
      evaluator: labelEvaluator(),
      reflector: { reflect: async () => ({ advice: {}, calls: 1 }) },
      record: async () => undefined,
    });
    expect(result.candidateScore).toBe(0);
    expect(reflecting.result.candidateScore).toBeGreaterThan(0);
  });
});
