import type { EvaluationOutcome } from "../processors/evaluation/port.ts";
import type { OptimizationResult } from "../processors/optimizers/driver.ts";
import {
  type LogOptimizationOptions,
  optimizeOnLog,
  streamEvaluator,
} from "../processors/optimizers/stream.ts";
import type { Fields, TypedProgram } from "../programs/builder.ts";
import { registerProgram } from "../programs/register.ts";
import { createClient, type ExecutionResult, type RequestDraft } from "../streams/client.ts";
import type { EventOf, Example, JsonRecord, MetricRef } from "../streams/events/index.ts";
import { newId } from "../streams/ids.ts";
import { type LogOptions, openConfiguredLog } from "./log.ts";
import { replay } from "./replay.ts";

/** An execution's result, with a completed one's outputs typed. */
export type ExecutionResultOf<Outputs extends Fields = Fields> =
  | Completed<Outputs>
  | Exclude<ExecutionResult, EventOf<"ExecutionCompleted">>;

type Completed<Outputs> = Omit<EventOf<"ExecutionCompleted">, "data"> & {
  data: Omit<EventOf<"ExecutionCompleted">["data"], "outputs"> & { outputs: Outputs };
};

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

type OptimizationRequest = EventOf<"OptimizationRequested">["data"];
type Defaulted = "optimizationId" | "variables" | "budget" | "seed" | "params";

/** What an optimization needs; the rest has defaults. */
export type OptimizationDraft = Omit<OptimizationRequest, Defaulted> &
  Partial<Pick<OptimizationRequest, Defaulted>>;

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
    /**
     * Publishes a request and resolves with its result. Given the built program (`program`) rather than
     * its id, the completed result's outputs are typed from the program's signatures.
     */
    execute: <Outputs extends Fields = Fields>(
      draft: Omit<RequestDraft, "programId"> & ({ programId: string } | { program: TypedProgram<Outputs> }),
      executeOptions?: { timeoutMs?: number },
    ): Promise<ExecutionResultOf<Outputs>> => {
      const { program, ...request } = draft as RequestDraft & { program?: TypedProgram<Outputs> };
      const programId = program?.programId ?? request.programId;
      return client.execute({ ...request, programId }, executeOptions) as Promise<ExecutionResultOf<Outputs>>;
    },
    results$: client.results$,
    progress$: client.progress$,
    variables$: client.variables$,
    checkpoint: client.checkpoint,
    record: client.record,
    /** Registers a program (built or its builder) and declares its variables; again, it changes nothing. */
    register: async <Outputs extends Fields>(
      program: TypedProgram<Outputs> | { build(): TypedProgram<Outputs> },
    ): Promise<TypedProgram<Outputs>> => {
      const definition = "build" in program ? program.build() : program;
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
