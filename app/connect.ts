import type { EvaluationOutcome } from "../processors/evaluation/port.ts";
import type { OptimizationResult } from "../processors/optimizers/driver.ts";
import {
  type LogOptimizationOptions,
  optimizeOnLog,
  streamEvaluator,
} from "../processors/optimizers/stream.ts";
import { ProgramBuilder } from "../programs/builder.ts";
import { registerProgram } from "../programs/register.ts";
import { createClient } from "../streams/client.ts";
import type { EventOf, Example, JsonRecord, MetricRef, ProgramDefinition } from "../streams/events/index.ts";
import { newId } from "../streams/ids.ts";
import { type LogOptions, openConfiguredLog } from "./log.ts";
import { replay } from "./replay.ts";

/** What an evaluation needs; the rest has defaults. */
export interface EvaluationDraft {
  programId: string;
  examples: readonly Example[];
  metric: MetricRef;
  evaluationId?: string;
  overrides?: JsonRecord;
  /** Examples run at once (default: twice the configured Python workers). */
  concurrency?: number;
  /** The score of an example whose execution failed (default 0). */
  failureScore?: number;
  outputs?: readonly string[];
}

/** What an optimization needs; the rest has defaults. */
export type OptimizationDraft = Omit<
  EventOf<"OptimizationRequested">["data"],
  "optimizationId" | "variables" | "budget" | "seed" | "params"
> &
  Partial<
    Pick<
      EventOf<"OptimizationRequested">["data"],
      "optimizationId" | "variables" | "budget" | "seed" | "params"
    >
  >;

/**
 * Opens the log the options name (each unset one from DSPEX_* or dspex.config.json; by default the embedded
 * log `.dspex/log.db`) and returns what a program's user does with it: register programs, publish requests
 * and follow their results and progress, evaluate, optimize, replay the read models. Processors and workers
 * run wherever `startProcessors` / `startWorkers` (or `dspex processors` / `dspex workers`) started them.
 */
export const connect = async (options: LogOptions = {}) => {
  const { log, config } = await openConfiguredLog(options);
  const client = createClient(log);
  const concurrency = config.python.workers * 2;
  return {
    log,
    config,
    publish: client.publish,
    execute: client.execute,
    results$: client.results$,
    progress$: client.progress$,
    variables$: client.variables$,
    /** Registers a program (built or its builder) and declares its variables; again, it changes nothing. */
    register: async (program: ProgramDefinition | ProgramBuilder): Promise<ProgramDefinition> => {
      const definition = program instanceof ProgramBuilder ? program.build() : program;
      await registerProgram(log, definition);
      return definition;
    },
    /** Every read model rebuilt from the log: variables, executions, sessions, metrics. */
    replay: (replayOptions?: Parameters<typeof replay>[1]) => replay(log, replayOptions),
    /** Scores a program on examples through the evaluation processor. */
    evaluate: (draft: EvaluationDraft): Promise<EvaluationOutcome> =>
      streamEvaluator(log).evaluate({
        evaluationId: draft.evaluationId ?? newId(),
        programId: draft.programId,
        examples: draft.examples,
        metric: draft.metric,
        overrides: draft.overrides ?? {},
        concurrency: draft.concurrency ?? concurrency,
        failureScore: draft.failureScore ?? 0,
        ...(draft.outputs ? { outputs: draft.outputs } : {}),
      }),
    /** Runs (or resumes, with the same `optimizationId`) an optimization and adopts its winner if it wins. */
    optimize: (
      draft: OptimizationDraft,
      runOptions: LogOptimizationOptions = {},
    ): Promise<OptimizationResult> =>
      optimizeOnLog(
        log,
        {
          optimizationId: newId(),
          variables: [],
          budget: {},
          seed: 0,
          params: {},
          ...draft,
        },
        { concurrency, ...runOptions },
      ),
    close: () => log.close(),
  };
};

export type Dspex = Awaited<ReturnType<typeof connect>>;
