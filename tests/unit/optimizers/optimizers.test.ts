import { describe, expect, it } from "vitest";
import type { ProgramRun } from "../../../processors/evaluation/port.ts";
import { trialEvaluationId } from "../../../processors/optimizers/history.ts";
import type { OptimizerName } from "../../../processors/optimizers/index.ts";
import { jsonEqual } from "../../../programs/variables/types.ts";
import type { DspexEvent, JsonRecord } from "../../../streams/events/index.ts";
import { codeOf, demosVariable, labelTaskRun } from "../../support/label-task.ts";
import { runOnLabelTask } from "./support.ts";

const racing = { rungs: 3, eta: 3, searchOn: "dev+train" };
const quick: [string, OptimizerName, JsonRecord][] = [
  ["bootstrap", "bootstrap", { maxLabeledDemos: 4, maxBootstrappedDemos: 4 }],
  ["simba", "simba", { bsize: 6, numCandidates: 4, maxSteps: 4, maxDemos: 6 }],
  ["bayes", "bayes", { trials: 30, maxDemos: 6 }],
  ["random", "random", { trials: 30, maxDemos: 6 }],
  ["bayes racing", "bayes", { trials: 30, maxDemos: 6, ...racing }],
  ["random racing", "random", { trials: 30, maxDemos: 6, ...racing }],
  [
    "bayes racing, demos of missed examples",
    "bayes",
    { trials: 30, maxDemos: 6, ...racing, demoPool: "missed" },
  ],
];
const paramsOf = (name: string) => quick.find(([n]) => n === name)![2];

describe.each(quick)("%s on the label task", (_name, optimizer, params) => {
  it("raises the dev score above the baseline and lands the winner", async () => {
    const { result, events } = await runOnLabelTask(optimizer, { params });
    expect(result.baselineScore).toBe(0);
    expect(result.bestScore).toBeGreaterThan(result.baselineScore);
    expect(result.accepted).toBe(true);
    expect(events.map((e) => e.type).slice(-2)).toEqual(["OptimizationCompleted", "MetricRecorded"]);
    expect(Object.keys(result.bestConfig)).toContain(demosVariable);
  });

  it("is reproducible from its seed", async () => {
    const a = await runOnLabelTask(optimizer, { params, seed: 3 });
    const b = await runOnLabelTask(optimizer, { params, seed: 3 });
    expect(b.result).toEqual(a.result);
    expect(b.events.map((e) => e.id)).toEqual(a.events.map((e) => e.id));
  });

  it("resumes after a crash to the same result as an uninterrupted run", async () => {
    const whole = await runOnLabelTask(optimizer, { params });
    const cut = Math.floor(whole.events.length / 2);
    const crashed = await runOnLabelTask(optimizer, { params, crashAfter: cut }).catch(
      (error: Error) => error,
    );
    expect(crashed).toBeInstanceOf(Error);
    const survived: DspexEvent[] = whole.events.slice(0, cut);
    const resumed = await runOnLabelTask(optimizer, { params, events: survived });
    expect(resumed.result).toEqual(whole.result);
    expect(resumed.events.map((e) => e.id)).toEqual(whole.events.map((e) => e.id));
    // The resumed run didn't redo the trials it had finished.
    expect(resumed.lmCalls).toBeLessThan(whole.lmCalls);
  });

  it("honors a call budget it announced before the run", async () => {
    const maxCalls = 60;
    const { result, events, lmCalls } = await runOnLabelTask(optimizer, {
      params,
      budget: { maxCalls },
    });
    const started = events[0]!;
    expect(started.type).toBe("OptimizationStarted");
    expect(started.type === "OptimizationStarted" && started.data.plannedCalls).toBeLessThanOrEqual(maxCalls);
    expect(lmCalls).toBeLessThanOrEqual(maxCalls);
    // Reflections (SIMBA's rules) are LM calls too, outside the program's.
    expect(result.calls).toBeGreaterThanOrEqual(lmCalls);
    expect(result.calls).toBeLessThanOrEqual(maxCalls);
  });

  it("honors a trial budget", async () => {
    const searchTrialsOf = async (budget: { maxTrials?: number }) =>
      (await runOnLabelTask(optimizer, { params, budget })).events.filter(
        (e) => e.type === "TrialProposed" && !["baseline", "final"].includes(String(e.data.config.phase)),
      ).length;
    const unbounded = await searchTrialsOf({});
    const bounded = await searchTrialsOf({ maxTrials: 3 });
    expect(unbounded).toBeGreaterThan(3);
    expect(bounded).toBeGreaterThan(0);
    expect(bounded).toBeLessThanOrEqual(3);
  });
});

describe("bootstrap few-shot", () => {
  it("keeps only teacher traces that passed the metric as demos", async () => {
    const { result, events } = await runOnLabelTask("bootstrap", {
      params: { maxLabeledDemos: 4, maxBootstrappedDemos: 4 },
    });
    const demos = result.bestConfig[demosVariable] as { label: string; answer: string }[];
    expect(demos).toHaveLength(4);
    const evaluations = events.filter((e) => e.type === "EvaluationCompleted");
    const passed = evaluations
      .flatMap((e) => (e.type === "EvaluationCompleted" ? e.data.results : []))
      .filter((r) => r.score === 1);
    for (const demo of demos) expect(passed.some((r) => r.outputs?.answer === demo.answer)).toBe(true);
    // It stops bootstrapping once it has enough demos: no trial after the fourth success.
    const trials = events.filter((e) => e.type === "TrialProposed" && e.data.config.phase === "bootstrap");
    expect(trials.length).toBeLessThan(18);
  });

  it("with candidates, scores each candidate's demos on the devset and keeps the best", async () => {
    const params = { maxLabeledDemos: 2, maxBootstrappedDemos: 2, candidates: 3 };
    const { result, events, setup } = await runOnLabelTask("bootstrap", { params });
    const candidates = events.flatMap((e) =>
      e.type === "TrialProposed" && e.data.config.phase === "candidate" ? [e.data.trial] : [],
    );
    expect(candidates).toHaveLength(3);
    const scores = events.flatMap((e) =>
      e.type === "TrialEvaluated" && candidates.includes(e.data.trial) ? [e.data.score] : [],
    );
    expect(scores).toHaveLength(3);
    expect(result.bestScore).toBe(Math.max(...scores));
    // Each candidate was scored on the whole devset, none on the trainset it bootstrapped from.
    const devIds = new Set(setup.devset.map((e) => e.id));
    const scored = events.flatMap((e) =>
      e.type === "TrialProposed" && e.data.config.phase === "candidate" ? [e.data.config.examples] : [],
    ) as string[][];
    for (const ids of scored) expect(new Set(ids)).toEqual(devIds);
  });

  it("adopts a winner already scored on the devset without scoring it again", async () => {
    const params = { maxLabeledDemos: 2, maxBootstrappedDemos: 2, candidates: 3 };
    const { result, events, lmCalls } = await runOnLabelTask("bootstrap", { params });
    const trialOf = (phase: string) =>
      events.flatMap((e) => (e.type === "TrialProposed" && e.data.config.phase === phase ? [e.data] : []));
    const [final] = trialOf("final");
    const winner = trialOf("candidate").find((t) => jsonEqual(t.config.overrides, final?.config.overrides));
    expect(result.accepted).toBe(true);
    expect(winner).toBeDefined();
    const evaluatedOf = (trial: number) =>
      events.find((e) => e.type === "TrialEvaluated" && e.data.trial === trial);
    const [finalEvaluated, winnerEvaluated] = [evaluatedOf(final!.trial), evaluatedOf(winner!.trial)];
    // The final trial is on the log with the winner's score and no calls; no evaluation ran for it.
    expect(finalEvaluated?.type === "TrialEvaluated" && finalEvaluated.data.calls).toBe(0);
    expect(finalEvaluated?.type === "TrialEvaluated" && finalEvaluated.data.score).toBe(
      winnerEvaluated?.type === "TrialEvaluated" && winnerEvaluated.data.score,
    );
    expect(result.calls).toBe(lmCalls);
  });

  it('with searchOn "dev+train", scores each candidate on the devset and the training examples it does not show', async () => {
    const params = { maxLabeledDemos: 2, maxBootstrappedDemos: 2, candidates: 3, searchOn: "dev+train" };
    const { events, setup } = await runOnLabelTask("bootstrap", { params });
    const candidates = events.flatMap((e) =>
      e.type === "TrialProposed" && e.data.config.phase === "candidate" ? [e.data.config] : [],
    );
    expect(candidates).toHaveLength(3);
    for (const config of candidates) {
      const shown = ((config.overrides as JsonRecord)[demosVariable] as { question: string }[]).map(
        (demo) => demo.question,
      );
      expect(shown.length).toBeGreaterThan(0);
      const unshown = setup.trainset.filter((e) => !shown.includes(String(e.inputs.question)));
      expect(unshown).toHaveLength(setup.trainset.length - shown.length);
      expect(config.examples).toEqual([...setup.devset, ...unshown].map((e) => e.id));
    }
  });

  it("with candidates, resumes after a crash to the same result", async () => {
    const params = { maxLabeledDemos: 2, maxBootstrappedDemos: 2, candidates: 3 };
    const whole = await runOnLabelTask("bootstrap", { params });
    const cut = Math.floor(whole.events.length * 0.6);
    await expect(runOnLabelTask("bootstrap", { params, crashAfter: cut })).rejects.toThrow("crash");
    const resumed = await runOnLabelTask("bootstrap", { params, events: whole.events.slice(0, cut) });
    expect(resumed.result).toEqual(whole.result);
    expect(resumed.events.map((e) => e.id)).toEqual(whole.events.map((e) => e.id));
  });
});

describe("SIMBA under a constraint", () => {
  it("runs its trajectories only at temperatures the constraint allows", async () => {
    const temperature = "label-qa.answer.temperature";
    const cool = {
      name: "cool answers",
      when: {},
      require: { variable: "answer.temperature", op: "<=" as const, than: 0.3 },
    };
    const temperaturesOf = (events: DspexEvent[]) =>
      events.flatMap((e) => {
        if (e.type !== "TrialProposed") return [];
        const value = (e.data.config.overrides as JsonRecord)[temperature];
        return typeof value === "number" ? [value] : [];
      });
    const free = await runOnLabelTask("simba", { params: paramsOf("simba") });
    expect(temperaturesOf(free.events).some((t) => t > 0.3)).toBe(true);
    const bounded = await runOnLabelTask("simba", { params: paramsOf("simba"), constraints: [cool] });
    const tried = temperaturesOf(bounded.events);
    expect(tried.length).toBeGreaterThan(0);
    expect(tried.every((t) => t <= 0.3)).toBe(true);
  });
});

describe.each(["random", "bayes"] as const)("%s search under a constraint", (optimizer) => {
  it("never tries a configuration that breaks it", async () => {
    const temperature = "label-qa.answer.temperature";
    const cool = {
      name: "cool answers",
      when: {},
      require: { variable: "answer.temperature", op: "<=" as const, than: 0.3 },
    };
    const params = paramsOf(optimizer);
    const free = await runOnLabelTask(optimizer, { params });
    const bounded = await runOnLabelTask(optimizer, { params, constraints: [cool] });
    const temperaturesOf = (events: DspexEvent[]) =>
      events.flatMap((e) =>
        e.type === "TrialProposed" && e.data.config.phase === "search"
          ? [Number((e.data.config.overrides as JsonRecord)[temperature])]
          : [],
      );
    // Without it the search tries hotter answers; with it, never.
    expect(temperaturesOf(free.events).some((t) => t > 0.3)).toBe(true);
    const tried = temperaturesOf(bounded.events);
    expect(tried.length).toBeGreaterThan(10);
    expect(tried.every((t) => t <= 0.3)).toBe(true);
  });
});

describe.each(["random", "bayes"] as const)(
  "%s search racing its candidates (successive halving)",
  (optimizer) => {
    const params = { trials: 27, maxDemos: 4, ...racing };
    const trialsOf = (events: DspexEvent[]) => {
      const scores = new Map(
        events.flatMap((e) => (e.type === "TrialEvaluated" ? [[e.data.trial, e.data] as const] : [])),
      );
      return events.flatMap((e) =>
        e.type === "TrialProposed"
          ? [{ ...e.data, phase: String(e.data.config.phase), evaluated: scores.get(e.data.trial)! }]
          : [],
      );
    };

    it("scores every candidate on a first share of its examples and only the best third on each next share", async () => {
      const { events, setup } = await runOnLabelTask(optimizer, { params });
      const trials = trialsOf(events);
      const inPhase = (phase: string) => trials.filter((t) => t.phase === phase);
      const [first, second, third] = [inPhase("search"), inPhase("race-1"), inPhase("race-2")];
      expect([first.length, second.length, third.length]).toEqual([27, 9, 3]);
      // The candidates promoted to the second rung are the nine best of the first (ties: the earlier drawn).
      const ranked = [...first].sort((a, b) => b.evaluated.score - a.evaluated.score || a.trial - b.trial);
      expect(second.map((t) => t.config.overrides)).toEqual(
        ranked.slice(0, 9).map((t) => t.config.overrides),
      );
      // A finalist's rungs are disjoint shares that add up to its selection examples: the devset and the
      // training examples it does not show.
      for (const finalist of third) {
        const own = trials.filter(
          (t) => t.phase !== "final" && jsonEqual(t.config.overrides, finalist.config.overrides),
        );
        const ids = own.flatMap((t) => t.config.examples as string[]);
        expect(new Set(ids).size).toBe(ids.length);
        const shown = (
          (finalist.config.overrides as JsonRecord)[demosVariable] as { question: string }[]
        ).map((d) => d.question);
        const selection = [
          ...setup.devset,
          ...setup.trainset.filter((e) => !shown.includes(String(e.inputs.question))),
        ].map((e) => e.id);
        expect(new Set(ids)).toEqual(new Set(selection));
        expect(own[0]!.config.examples).toHaveLength(Math.ceil(selection.length / 9));
      }
    });

    it("adopts the winner on its dev score from the races, with no final evaluation, for fewer calls than scoring all", async () => {
      const raced = await runOnLabelTask(optimizer, { params });
      const full = await runOnLabelTask(optimizer, { params: { ...params, rungs: 1 } });
      const trials = trialsOf(raced.events);
      const final = trials.find((t) => t.phase === "final")!;
      expect(raced.result.accepted).toBe(true);
      expect(final.evaluated.calls).toBe(0);
      // Its dev score is the mean of the winner's results on the dev examples, over the rungs that scored them.
      const devIds = new Set(raced.setup.devset.map((e) => e.id));
      const winnerEvaluations = new Set(
        trials
          .filter((t) => t.phase !== "final" && jsonEqual(t.config.overrides, final.config.overrides))
          .map((t) => trialEvaluationId(raced.setup.optimizationId, t.trial)),
      );
      const devScores = raced.events.flatMap((e) =>
        e.type === "EvaluationCompleted" && winnerEvaluations.has(e.data.evaluationId)
          ? e.data.results.filter((r) => devIds.has(r.exampleId)).map((r) => r.score)
          : [],
      );
      expect(devScores).toHaveLength(devIds.size);
      expect(final.evaluated.score).toBeCloseTo(devScores.reduce((a, b) => a + b, 0) / devScores.length, 12);
      expect(raced.result.bestScore).toBeCloseTo(final.evaluated.score, 12);
      expect(raced.lmCalls).toBeLessThan(full.lmCalls / 2);
      expect(raced.result.calls).toBe(raced.lmCalls);
      const started = raced.events[0]!;
      expect(started.type === "OptimizationStarted" && started.data.plannedCalls).toBeGreaterThanOrEqual(
        raced.lmCalls,
      );
    });
  },
);

describe.each(["random", "bayes"] as const)('%s search with demoPool "missed"', (optimizer) => {
  // A model that already knows two labels' codes: it learns the other four from demos.
  const known = ["amber", "birch"];
  const run: ProgramRun = async (inputs, overrides) =>
    known.includes(String(inputs.label))
      ? { outputs: { answer: codeOf(String(inputs.label)) }, calls: 1 }
      : labelTaskRun(inputs, overrides);
  const optimize = async (params: JsonRecord) => {
    const { setup, result, events, lmCalls } = await runOnLabelTask(optimizer, {
      params: { trials: 20, maxDemos: 4, ...racing, ...params },
      run,
    });
    const trials = events.flatMap((e) => (e.type === "TrialProposed" ? [e.data] : []));
    const demoLabels = trials
      .filter((t) => t.config.phase === "search")
      .flatMap((t) => ((t.config.overrides as JsonRecord)[demosVariable] ?? []) as { label: string }[])
      .map((d) => d.label);
    return { setup, result, events, trials, calls: lmCalls, demoLabels: new Set(demoLabels) };
  };

  it("scores the current configuration on the trainset once, then draws demos only from what it missed", async () => {
    const { setup, result, events, trials, calls, demoLabels } = await optimize({ demoPool: "missed" });
    const pool = trials.filter((t) => t.config.phase === "pool");
    expect(pool).toHaveLength(1);
    expect(pool[0]!.config.overrides).toEqual({});
    expect(pool[0]!.config.examples).toEqual(setup.trainset.map((e) => e.id));
    expect([...demoLabels].sort()).toEqual(["cedar", "delta", "ember", "flint"]);
    expect(result.accepted).toBe(true);
    expect(result.calls).toBe(calls);
    const started = events[0]!;
    expect(started.type === "OptimizationStarted" && started.data.plannedCalls).toBeGreaterThanOrEqual(calls);
  });

  it("draws from every training example by default", async () => {
    const { trials, demoLabels } = await optimize({});
    expect(trials.some((t) => t.config.phase === "pool")).toBe(false);
    expect(known.some((label) => demoLabels.has(label))).toBe(true);
  });
});
