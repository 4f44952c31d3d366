import type { Example, JsonRecord, MetricRef, TraceEntry, Usage } from "../../streams/events/index.ts";
import type { MetricRegistry } from "./metrics.ts";

/** What to evaluate: a program under variable overrides, on some examples. */
export interface EvaluationPlan {
  evaluationId: string;
  programId: string;
  overrides: JsonRecord;
  examples: readonly Example[];
  metric: MetricRef;
  concurrency: number;
  failureScore: number;
  /** Only these program outputs are computed (stages none of them needs are left out); all by default. */
  outputs?: readonly string[];
}

/** How one example went: a failed example carries the error and scores the failure score. */
export interface ExampleOutcome {
  exampleId: string;
  score: number;
  outputs?: JsonRecord;
  error?: string;
  calls: number;
  /** What each predictor saw and said (bootstrapping demos); absent when only outputs are known. */
  trace?: TraceEntry[];
}

export interface EvaluationOutcome {
  evaluationId: string;
  score: number;
  results: ExampleOutcome[];
  errors: number;
  usage: Usage;
}

/**
 * The one thing optimizers need from the world. The stream runtime implements it by fanning out
 * `ExecutionRequested` with overrides; tests implement it with an in-process program.
 */
export interface Evaluator {
  evaluate(plan: EvaluationPlan): Promise<EvaluationOutcome>;
  /** True when the evaluator itself writes `EvaluationCompleted` to the log (the stream runtime does). */
  readonly recordsResults?: boolean;
}

/** The mean score over every example, failures included at their failure score. */
export const meanScore = (results: readonly { score: number }[]): number =>
  results.length === 0 ? 0 : results.reduce((sum, r) => sum + r.score, 0) / results.length;

export const summarizeOutcomes = (
  evaluationId: string,
  results: ExampleOutcome[],
  usage?: Partial<Usage>,
): EvaluationOutcome => ({
  evaluationId,
  score: meanScore(results),
  results,
  errors: results.filter((r) => r.error !== undefined).length,
  usage: {
    calls: usage?.calls ?? results.reduce((sum, r) => sum + r.calls, 0),
    promptTokens: usage?.promptTokens ?? 0,
    completionTokens: usage?.completionTokens ?? 0,
  },
});

/** A program run in-process: outputs (with the LM calls it made) or an error. */
export type ProgramRun = (
  inputs: JsonRecord,
  overrides: JsonRecord,
) => Promise<{ outputs: JsonRecord; calls: number; trace?: TraceEntry[] } | { error: string; calls: number }>;

/** Runs `concurrency` tasks at a time, keeping their order in the result. */
export const mapBounded = async <T, R>(
  items: readonly T[],
  concurrency: number,
  task: (item: T) => Promise<R>,
): Promise<R[]> => {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return results;
};

/** An evaluator over an in-process program (tests, benchmarks, notebooks). */
export const programEvaluator = (run: ProgramRun, metrics: MetricRegistry): Evaluator => ({
  async evaluate(plan) {
    const results = await mapBounded(plan.examples, plan.concurrency, async (example) => {
      const ran = await run(example.inputs, plan.overrides).catch((error: unknown) => ({
        error: error instanceof Error ? error.message : String(error),
        calls: 0,
      }));
      if ("error" in ran)
        return { exampleId: example.id, score: plan.failureScore, error: ran.error, calls: ran.calls };
      return {
        exampleId: example.id,
        ...metrics.judge(plan.metric, ran.outputs, example.expected, plan.failureScore),
        outputs: ran.outputs,
        calls: ran.calls,
        ...(ran.trace ? { trace: ran.trace } : {}),
      };
    });
    return summarizeOutcomes(plan.evaluationId, results);
  },
});
