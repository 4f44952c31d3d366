import { causedBy, type Envelope } from "../../streams/envelope.ts";
import {
  type DspexEvent,
  EvaluationCompleted,
  type EventOf,
  ExecutionRequested,
  type JsonRecord,
  noUsage,
} from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import type { LogRecord } from "../../streams/log.ts";
import { looseId, looseObject } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import type { Output, Processor, ProcessorContext } from "../runtime/index.ts";
import type { MetricRegistry } from "./metrics.ts";
import { meanScore } from "./port.ts";

type Request = EventOf<"EvaluationRequested">;

interface ExampleResult {
  exampleId: string;
  score: number;
  outputs?: JsonRecord;
  error?: string;
}

/** One evaluation in flight: which examples were sent, which came back. */
export interface RunningEvaluation {
  request: Request;
  /** Examples sent so far (the first `dispatched` of the request's examples). */
  dispatched: number;
  /**
   * Per example of the request, in its order: its result once back. An array, copied per result (a few
   * microseconds for thousands of examples), where an object keyed by example was copied key by key.
   */
  results: readonly (ExampleResult | null)[];
  /** How many results are back. */
  scored: number;
  usage: { calls: number; promptTokens: number; completionTokens: number };
}

export interface EvaluationState {
  /** The evaluations still running. */
  evaluations: Readonly<Record<string, RunningEvaluation>>;
  /**
   * The last `rememberedCompletions` evaluations that completed, oldest first: a request repeated with the
   * same id is not run again. Their examples and results leave the state (an optimizer's thousands of
   * trials each kept theirs, and every result copied the map of them all).
   */
  completed: readonly string[];
}

export const emptyEvaluations: EvaluationState = { evaluations: {}, completed: [] };

export const rememberedCompletions = 10_000;

const isKnown = (state: EvaluationState, evaluationId: string): boolean =>
  evaluationId in state.evaluations || state.completed.includes(evaluationId);

/** The state once `evaluationId` completed: no longer running, remembered as done. */
const withCompleted = (state: EvaluationState, evaluationId: string): EvaluationState => {
  const { [evaluationId]: _done, ...running } = state.evaluations;
  return {
    evaluations: running,
    completed: [...state.completed, evaluationId].slice(-rememberedCompletions),
  };
};

/** The request id of one example's execution: the same evaluation and example, the same id. */
export const evaluationRequestId = (evaluationId: string, exampleId: string): string =>
  derivedId(`evaluation/${evaluationId}`, `example/${exampleId}`);

const executionRequest = (request: Request, index: number, now: number): Envelope => {
  const { evaluationId, programId, overrides, outputs } = request.data;
  const example = request.data.examples[index]!;
  const requestId = evaluationRequestId(evaluationId, example.id);
  return ExecutionRequested.create({
    id: derivedId(request.id, `execution/${example.id}`),
    stream: `request-${requestId}`,
    key: requestId,
    occurredAt: new Date(now).toISOString(),
    ...causedBy(request),
    data: {
      requestId,
      programId,
      inputs: example.inputs,
      overrides,
      evaluationId,
      exampleId: example.id,
      ...(outputs ? { outputs } : {}),
    },
  });
};

const completion = (running: RunningEvaluation, now: number): Envelope => {
  const { request } = running;
  const results = running.results as ExampleResult[];
  return EvaluationCompleted.create({
    id: derivedId(request.id, "completed"),
    stream: `evaluation-${request.data.evaluationId}`,
    key: request.data.evaluationId,
    occurredAt: new Date(now).toISOString(),
    ...causedBy(request),
    data: {
      evaluationId: request.data.evaluationId,
      programId: request.data.programId,
      score: meanScore(results),
      results,
      errors: results.filter((r) => r.error !== undefined).length,
      usage: running.usage,
    },
  });
};

type ExecutionResult = EventOf<"ExecutionCompleted" | "ExecutionFailed" | "ExecutionRejected">;

const scoreResult = (
  { metric, failureScore }: Request["data"],
  example: Request["data"]["examples"][number],
  result: ExecutionResult,
  metrics: MetricRegistry,
): ExampleResult => {
  switch (result.type) {
    case "ExecutionCompleted":
      return {
        exampleId: example.id,
        ...metrics.judge(metric, result.data.outputs, example.expected, failureScore),
        outputs: result.data.outputs,
      };
    case "ExecutionFailed":
      return {
        exampleId: example.id,
        score: failureScore,
        error: `${result.data.error.kind} in ${result.data.failedStage}: ${result.data.error.message}`,
      };
    case "ExecutionRejected":
      return {
        exampleId: example.id,
        score: failureScore,
        error: `rejected (${result.data.code}): ${result.data.reason}`,
      };
  }
};

const usageOf = (result: ExecutionResult) =>
  result.type === "ExecutionRejected" ? noUsage() : result.data.usage;

/** Starts an evaluation: the first `concurrency` examples go out, the rest wait for a free slot. */
export const startEvaluation = (
  state: EvaluationState,
  request: Request,
  now: number,
): Output<EvaluationState> => {
  if (isKnown(state, request.data.evaluationId)) return { state, emit: [] };
  const dispatched = Math.min(request.data.concurrency, request.data.examples.length);
  const running: RunningEvaluation = {
    request,
    dispatched,
    results: request.data.examples.map(() => null),
    scored: 0,
    usage: noUsage(),
  };
  return {
    state: { ...state, evaluations: { ...state.evaluations, [request.data.evaluationId]: running } },
    emit: Array.from({ length: dispatched }, (_, i) => executionRequest(request, i, now)),
  };
};

/** An evaluation that cannot run completes at once: every example fails with the reason, none is dropped. */
export const refuseEvaluation = (
  state: EvaluationState,
  request: Request,
  reason: string,
  now: number,
): Output<EvaluationState> => {
  if (isKnown(state, request.data.evaluationId)) return { state, emit: [] };
  const { examples, failureScore } = request.data;
  const running: RunningEvaluation = {
    request,
    dispatched: 0,
    results: examples.map((e) => ({ exampleId: e.id, score: failureScore, error: reason })),
    scored: examples.length,
    usage: noUsage(),
  };
  return { state: withCompleted(state, request.data.evaluationId), emit: [completion(running, now)] };
};

/** Folds one example's result: the next waiting example goes out, and the last one completes the evaluation. */
export const recordResult = (
  state: EvaluationState,
  result: ExecutionResult,
  metrics: MetricRegistry,
  now: number,
): Output<EvaluationState> => {
  const { evaluationId, exampleId } = result.data;
  const running = evaluationId ? state.evaluations[evaluationId] : undefined;
  if (!running || !exampleId) return { state, emit: [] };
  const examples = running.request.data.examples;
  const index = examples.findIndex((e) => e.id === exampleId);
  if (index < 0 || running.results[index]) return { state, emit: [] };
  const usage = usageOf(result);
  const results = [...running.results];
  results[index] = scoreResult(running.request.data, examples[index]!, result, metrics);
  const emit: Envelope[] = [];
  let dispatched = running.dispatched;
  if (dispatched < examples.length) emit.push(executionRequest(running.request, dispatched++, now));
  const next: RunningEvaluation = {
    ...running,
    dispatched,
    results,
    scored: running.scored + 1,
    usage: {
      calls: running.usage.calls + usage.calls,
      promptTokens: running.usage.promptTokens + usage.promptTokens,
      completionTokens: running.usage.completionTokens + usage.completionTokens,
    },
  };
  if (next.scored < examples.length)
    return { state: { ...state, evaluations: { ...state.evaluations, [evaluationId!]: next } }, emit };
  emit.push(completion(next, now));
  return { state: withCompleted(state, evaluationId!), emit };
};

/**
 * The answer to a record on dspex.requests that is not a valid event but names an evaluation: an
 * EvaluationCompleted that says why no example ran.
 */
export const refuseUnreadable = (record: LogRecord, reason: string): Envelope[] => {
  const envelope = looseObject(record);
  const data = envelope?.data as Record<string, unknown> | undefined;
  const evaluationId = looseId(data, "evaluationId");
  if (!evaluationId || envelope?.type !== "EvaluationRequested") return [];
  const at = `${record.topic}/${record.partition}/${record.offset}`;
  return [
    EvaluationCompleted.create({
      id: derivedId(at, "evaluation-refused"),
      stream: `evaluation-${evaluationId}`,
      key: evaluationId,
      correlationId: looseId(envelope, "correlationId") ?? at,
      data: {
        evaluationId,
        programId: looseId(data, "programId") ?? "unknown",
        score: 0,
        results: [],
        errors: 0,
        usage: noUsage(),
        error: `the request is not a valid EvaluationRequested: ${reason}`,
      },
    }),
  ];
};

/** The first id given to two examples: their results could not be told apart. */
const repeatedId = (examples: readonly { id: string }[]): string | undefined => {
  const seen = new Set<string>();
  for (const { id } of examples) {
    if (seen.has(id)) return id;
    seen.add(id);
  }
  return undefined;
};

/** Why an evaluation cannot run, if it cannot. */
const refusalOf = (request: Request, metrics: MetricRegistry): string | undefined => {
  if (!metrics.has(request.data.metric.name)) return `unknown metric "${request.data.metric.name}"`;
  const repeated = repeatedId(request.data.examples);
  if (repeated !== undefined)
    return `example id "${repeated}" is given to more than one example; give each example its own id`;
  return undefined;
};

/**
 * `EvaluationRequested` → a bounded fan-out of `ExecutionRequested` (never more than `concurrency` in
 * flight) → `EvaluationCompleted` once every example has a result; failures score the failure score.
 */
export const evaluationProcessor = (
  metrics: MetricRegistry,
  name = "dspex-evaluation",
): Processor<EvaluationState> => ({
  name,
  topics: [Topics.requests, Topics.results],
  // 3: completed evaluations kept as ids only (2 kept them whole; 1 kept results by example id).
  version: 3,
  // The pipeline dead-letters what cannot be read on dspex.requests.
  deadLetters: [Topics.results],
  answerUnreadable: (record, reason) =>
    record.topic === Topics.requests ? refuseUnreadable(record, reason) : [],
  initialState: emptyEvaluations,
  handle(state: EvaluationState, event: DspexEvent, ctx: ProcessorContext) {
    switch (event.type) {
      case "EvaluationRequested": {
        const refusal = refusalOf(event, metrics);
        return refusal === undefined
          ? startEvaluation(state, event, ctx.now)
          : refuseEvaluation(state, event, refusal, ctx.now);
      }
      case "ExecutionCompleted":
      case "ExecutionFailed":
      case "ExecutionRejected":
        return recordResult(state, event, metrics, ctx.now);
      default:
        return { state, emit: [] };
    }
  },
});
