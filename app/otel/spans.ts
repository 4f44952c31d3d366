import { createHash } from "node:crypto";
import type { DspexEvent, EventOf, LmCall, StepError } from "../../streams/events/index.ts";
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_INPUT_MESSAGES,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_OUTPUT_MESSAGES,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_REQUEST_TEMPERATURE,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_SYSTEM,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_WORKFLOW_NAME,
  ATTR_SESSION_ID,
  GEN_AI_OPERATION_CHAT,
  GEN_AI_OPERATION_INVOKE_WORKFLOW,
  providerOf,
} from "./conventions.ts";

export type AttributeValue = string | number | boolean;

/** One span, as plain data: what the exporter turns into an OpenTelemetry ReadableSpan. */
export interface SpanDraft {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: "internal" | "client";
  /** Milliseconds since the epoch. */
  startMs: number;
  endMs: number;
  attributes: Record<string, AttributeValue>;
  /** Set when the span failed: its status is ERROR with this description. */
  error?: string;
}

export interface SpanOptions {
  /** Also record the messages and completions of LM calls (opt-in in the GenAI conventions: they may hold personal data). */
  content?: boolean;
}

const hex = (text: string, length: number) =>
  createHash("sha256").update(text).digest("hex").slice(0, length);

/** An execution's trace id: the same on every export, by any process (32 hex digits). */
export const traceIdOf = (executionId: string): string => hex(`dspex/trace/${executionId}`, 32);

/** A span id within an execution's trace, from the span's place in it (16 hex digits). */
export const spanIdOf = (executionId: string, place: string): string =>
  hex(`dspex/span/${executionId}/${place}`, 16);

type ExecutionResult = EventOf<"ExecutionCompleted"> | EventOf<"ExecutionFailed">;

const timeOf = (event: { occurredAt: string }) => Date.parse(event.occurredAt);

const describeError = (error: StepError) => `${error.kind}: ${error.message}`;

/** The LM calls a step result recorded (trusted decoding leaves older events without the field). */
const lmCallsOf = (data: { lmCalls?: LmCall[] }): LmCall[] => data.lmCalls ?? [];

const asNumber = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) ? value : undefined;

/** Attributes without the undefined ones (OpenTelemetry attributes have no "absent" value). */
const defined = (attributes: Record<string, AttributeValue | undefined>): Record<string, AttributeValue> =>
  Object.fromEntries(Object.entries(attributes).filter(([, value]) => value !== undefined)) as Record<
    string,
    AttributeValue
  >;

/** The GenAI conventions' message shape: a role and its parts. */
const messagesJson = (messages: readonly { role: string; content: string }[]) =>
  JSON.stringify(messages.map(({ role, content }) => ({ role, parts: [{ type: "text", content }] })));

const isResult = (event: DspexEvent): event is ExecutionResult =>
  event.type === "ExecutionCompleted" || event.type === "ExecutionFailed";

/** What is known of one stage attempt from the stage events (and its steps': a first attempt has no StageScheduled). */
interface Attempt {
  stageId: string;
  attempt: number;
  scheduled?: EventOf<"StageScheduled">;
  ended?: EventOf<"StageCompleted"> | EventOf<"StageFailed">;
}

const attemptsOf = (events: readonly DspexEvent[]): Map<string, Attempt> => {
  const attempts = new Map<string, Attempt>();
  const at = (stageId: string, attempt: number) => {
    const key = `${stageId}/${attempt}`;
    const known = attempts.get(key) ?? { stageId, attempt };
    attempts.set(key, known);
    return known;
  };
  for (const event of events) {
    if (event.type === "StepDispatched") at(event.data.stageId, event.data.attempt);
    else if (event.type === "StageScheduled") at(event.data.stageId, event.data.attempt).scheduled = event;
    else if (event.type === "StageCompleted" || event.type === "StageFailed")
      at(event.data.stageId, event.data.attempt).ended = event;
  }
  return attempts;
};

const stageOutcome = (attempt: Attempt): string => {
  const ended = attempt.ended;
  if (!ended) return "unfinished";
  if (ended.type === "StageCompleted") return "completed";
  if (ended.data.willRetry) return "retried";
  return ended.data.error.kind === "cancelled" && !attempt.scheduled ? "skipped" : "failed";
};

/** What is known of one step (one DSPy module run) from the step events. */
interface Step {
  dispatched: EventOf<"StepDispatched">;
  started?: EventOf<"StepStarted">;
  ended?: EventOf<"StepCompleted"> | EventOf<"StepFailed">;
}

const stepsOf = (events: readonly DspexEvent[]): Step[] => {
  const steps = new Map<string, Step>();
  for (const event of events)
    if (event.type === "StepDispatched") steps.set(event.data.stepId, { dispatched: event });
  for (const event of events) {
    if (event.type !== "StepStarted" && event.type !== "StepCompleted" && event.type !== "StepFailed")
      continue;
    const step = steps.get(event.data.stepId);
    if (!step) continue;
    if (event.type === "StepStarted") step.started = event;
    else step.ended = event;
  }
  return [...steps.values()];
};

/**
 * When an attempt began: its first step's dispatch; a completed one without steps (a native stage) its
 * duration before its end; else when it was scheduled (only retries are).
 */
const attemptStart = (attempt: Attempt, steps: readonly Step[]): number | undefined => {
  const dispatches = steps.map(({ dispatched }) => timeOf(dispatched));
  if (dispatches.length > 0) return Math.min(...dispatches);
  if (attempt.ended?.type === "StageCompleted") return timeOf(attempt.ended) - attempt.ended.data.durationMs;
  const notBefore = attempt.scheduled?.data.notBefore;
  if (notBefore) return Date.parse(notBefore);
  return attempt.scheduled ? timeOf(attempt.scheduled) : undefined;
};

/** The spans of a step's LM calls: one per recorded call, else one for the whole step with its usage. */
const lmSpans = (
  step: Step,
  parent: { traceId: string; spanId: string; endMs: number },
  executionId: string,
  options: SpanOptions,
): SpanDraft[] => {
  const { dispatched, started, ended } = step;
  const { lm, stepId } = dispatched.data;
  const startMs = started ? timeOf(started) : timeOf(dispatched);
  const endMs = ended ? timeOf(ended) : parent.endMs;
  const common = {
    [ATTR_GEN_AI_OPERATION_NAME]: GEN_AI_OPERATION_CHAT,
    [ATTR_GEN_AI_PROVIDER_NAME]: providerOf(lm.model),
    [ATTR_GEN_AI_SYSTEM]: providerOf(lm.model),
    [ATTR_GEN_AI_REQUEST_MODEL]: lm.model,
    [ATTR_GEN_AI_REQUEST_TEMPERATURE]: lm.temperature,
    [ATTR_GEN_AI_REQUEST_MAX_TOKENS]: lm.maxTokens,
    "dspex.step.id": stepId,
    "dspex.step.module": dispatched.data.module,
    "dspex.step.worker": started?.data.worker || ended?.data.worker || undefined,
  };
  const failure = ended?.type === "StepFailed" ? ended.data.error : undefined;
  const span = (
    place: string,
    from: number,
    to: number,
    attributes: Record<string, AttributeValue | undefined>,
  ) => ({
    traceId: parent.traceId,
    spanId: spanIdOf(executionId, place),
    parentSpanId: parent.spanId,
    name: `${GEN_AI_OPERATION_CHAT} ${lm.model}`,
    kind: "client" as const,
    startMs: from,
    endMs: Math.max(from, to),
    attributes: defined({ ...common, ...attributes }),
  });
  const calls = ended ? lmCallsOf(ended.data) : [];
  if (calls.length === 0) {
    const usage = ended?.type === "StepCompleted" ? ended.data.usage : undefined;
    return [
      {
        ...span(`step/${stepId}`, startMs, endMs, {
          [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: usage?.promptTokens,
          [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: usage?.completionTokens,
          "dspex.lm.calls": usage?.calls,
          [ATTR_ERROR_TYPE]: failure?.kind,
        }),
        ...(failure ? { error: describeError(failure) } : {}),
      },
    ];
  }
  // A call records its latency, not its start: the calls are laid end to end from the step's start.
  let cursor = startMs;
  return calls.map((call, index) => {
    const from = cursor;
    cursor = Math.min(endMs, from + (asNumber(call.latencyMs) ?? 0));
    const content =
      options.content && call.messages
        ? {
            [ATTR_GEN_AI_INPUT_MESSAGES]: messagesJson(call.messages),
            [ATTR_GEN_AI_OUTPUT_MESSAGES]:
              call.completion === undefined
                ? undefined
                : messagesJson([{ role: "assistant", content: call.completion }]),
          }
        : {};
    const last = index === calls.length - 1;
    return {
      ...span(`step/${stepId}/call/${index}`, from, cursor, {
        [ATTR_GEN_AI_RESPONSE_MODEL]: typeof call.model === "string" ? call.model : undefined,
        [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: asNumber(call.promptTokens),
        [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: asNumber(call.completionTokens),
        "dspex.lm.cost_usd": asNumber(call.cost),
        "dspex.lm.call": index,
        [ATTR_ERROR_TYPE]: last ? failure?.kind : undefined,
        ...content,
      }),
      ...(last && failure ? { error: describeError(failure) } : {}),
    };
  });
};

/** An LM call without its text: what a span needs of it when content is not exported. */
const usageOnly = ({ messages: _messages, completion: _completion, ...usage }: LmCall): LmCall => usage;

/**
 * An event with what no span uses taken out (inputs, outputs, demos, traces; LM call texts unless
 * `content`): what an exporter keeps in memory while an execution runs. Its spans are the same.
 */
export const withoutPayloads = (event: DspexEvent, options: SpanOptions = {}): DspexEvent => {
  const calls = (data: object) => (options.content ? lmCallsOf(data) : lmCallsOf(data).map(usageOnly));
  switch (event.type) {
    case "ExecutionStarted":
      return { ...event, data: { ...event.data, inputs: {} } };
    case "StepDispatched":
      return {
        ...event,
        data: {
          ...event.data,
          inputs: {},
          demos: [],
          signature: { instructions: "", inputs: [], outputs: [] },
          variableVersions: {},
        },
      };
    case "StepCompleted":
      return {
        ...event,
        data: { ...event.data, outputs: {}, trace: [], lmCalls: calls(event.data) },
      } as DspexEvent;
    case "StepFailed":
      return { ...event, data: { ...event.data, lmCalls: calls(event.data) } } as DspexEvent;
    case "StageCompleted":
      return { ...event, data: { ...event.data, outputs: {} } };
    default:
      return event;
  }
};

/**
 * The spans of one finished execution, from its events (any order; those of other executions ignored):
 * the execution (root) → one span per stage attempt → one per LM call of its steps (or one per step when
 * the workers recorded no calls). Ids derive from the execution id, so a second export repeats them.
 * Nothing until the execution's result (ExecutionCompleted or ExecutionFailed) is among the events.
 */
export const executionSpans = (
  executionId: string,
  events: readonly DspexEvent[],
  options: SpanOptions = {},
): SpanDraft[] => {
  const mine = events.filter(
    (e) => (e.data as { executionId?: unknown }).executionId === executionId,
  ) as DspexEvent[];
  const result = mine.find(isResult);
  if (!result) return [];
  const started = mine.find((e): e is EventOf<"ExecutionStarted"> => e.type === "ExecutionStarted");
  const traceId = traceIdOf(executionId);
  const rootEnd = timeOf(result);
  const root: SpanDraft = {
    traceId,
    spanId: spanIdOf(executionId, "execution"),
    name: `${GEN_AI_OPERATION_INVOKE_WORKFLOW} ${result.data.programId}`,
    kind: "internal",
    startMs: started ? timeOf(started) : rootEnd - result.data.durationMs,
    endMs: rootEnd,
    attributes: defined({
      [ATTR_GEN_AI_OPERATION_NAME]: GEN_AI_OPERATION_INVOKE_WORKFLOW,
      [ATTR_GEN_AI_WORKFLOW_NAME]: result.data.programId,
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: result.data.usage.promptTokens,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: result.data.usage.completionTokens,
      [ATTR_SESSION_ID]: started?.data.sessionId,
      "dspex.execution.id": executionId,
      "dspex.request.id": result.data.requestId,
      "dspex.program.id": result.data.programId,
      "dspex.program.version": started?.data.programVersion,
      "dspex.execution.outcome": result.type === "ExecutionCompleted" ? "completed" : "failed",
      "dspex.lm.calls": result.data.usage.calls,
      "dspex.evaluation.id": result.data.evaluationId,
      "dspex.example.id": result.data.exampleId,
      [ATTR_ERROR_TYPE]: result.type === "ExecutionFailed" ? result.data.error.kind : undefined,
    }),
    ...(result.type === "ExecutionFailed"
      ? { error: `stage ${result.data.failedStage}: ${describeError(result.data.error)}` }
      : {}),
  };
  const steps = stepsOf(mine);
  const spans: SpanDraft[] = [root];
  for (const attempt of attemptsOf(mine).values()) {
    const endMs = attempt.ended ? timeOf(attempt.ended) : rootEnd;
    const ownSteps = steps.filter(
      ({ dispatched }) =>
        dispatched.data.stageId === attempt.stageId && dispatched.data.attempt === attempt.attempt,
    );
    const startMs = attemptStart(attempt, ownSteps) ?? endMs;
    const failure = attempt.ended?.type === "StageFailed" ? attempt.ended.data.error : undefined;
    const stage: SpanDraft = {
      traceId,
      spanId: spanIdOf(executionId, `stage/${attempt.stageId}/${attempt.attempt}`),
      parentSpanId: root.spanId,
      name: `stage ${attempt.stageId}`,
      kind: "internal",
      startMs: Math.min(startMs, endMs),
      endMs,
      attributes: defined({
        "dspex.stage.id": attempt.stageId,
        "dspex.stage.attempt": attempt.attempt,
        "dspex.stage.outcome": stageOutcome(attempt),
        [ATTR_ERROR_TYPE]: failure?.kind,
      }),
      ...(failure ? { error: describeError(failure) } : {}),
    };
    spans.push(stage);
    for (const step of ownSteps) spans.push(...lmSpans(step, stage, executionId, options));
  }
  return spans;
};
