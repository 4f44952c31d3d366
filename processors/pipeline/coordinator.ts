import type { Envelope } from "../../streams/envelope.ts";
import {
  CircuitClosed,
  CircuitHalfOpened,
  CircuitOpened,
  type DspexEvent,
  type EventOf,
  ExecutionCompleted,
  ExecutionFailed,
  type ExecutionPolicy,
  executionMetric,
  type JsonRecord,
  MetricRecorded,
  noUsage,
  type ProgramDefinition,
  retrieveConfigOf,
  StageCompleted,
  type StageDefinition,
  StageFailed,
  StageScheduled,
  StepDispatched,
  type StepError,
  StepFailed,
  StepRerouted,
  stageCostMetric,
  stageMetric,
  type Usage,
} from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import { Topics } from "../../streams/topics.ts";
import {
  admit,
  type Circuit,
  type CircuitPolicy,
  closedCircuit,
  countsAgainstModel,
  defaultCircuitPolicy,
  recordFailure,
  recordSuccess,
  type Transition,
} from "../adaptation/circuit.ts";
import { runNativeStage, type Transform } from "../native/index.ts";
import {
  adapterOf,
  programOutputs,
  resolveVariables,
  stageInputs,
  stepSettings,
  type VariableValue,
} from "./planner.ts";
import { checkFields } from "./signature-check.ts";

export type StageState =
  | { status: "waiting" }
  | {
      status: "running";
      attempt: number;
      stepId: string;
      model: string;
      /** When the first attempt was dispatched: stage timings span every attempt. */
      startedAt: number;
      deadline: number;
      /** Soft mark (not replayed): the tick already emitted this attempt's timeout. */
      timeoutSent?: boolean;
      /** Models whose call failed in an earlier attempt of this stage: the next attempts try others first. */
      failedModels?: readonly string[];
      /** The adapter this attempt asked for, and whether it was an exploration of another than the variable's. */
      adapter?: string;
      explored?: boolean;
    }
  | {
      status: "retrying";
      nextAttempt: number;
      notBefore: number;
      startedAt: number;
      scheduleSent?: boolean;
      failedModels?: readonly string[];
    }
  | { status: "completed"; outputs: JsonRecord; durationMs: number; attempts: number }
  | { status: "failed"; error: StepError; attempts: number; durationMs: number }
  | { status: "skipped"; reason: string };

export interface Execution {
  executionId: string;
  requestId: string;
  program: ProgramDefinition;
  sessionKey: string;
  inputs: JsonRecord;
  overrides: JsonRecord;
  policy: Required<ExecutionPolicy>;
  evaluationId?: string;
  exampleId?: string;
  correlationId: string;
  startedAt: number;
  /** The stages to run when the request asked for some outputs only (the others are skipped); all by default. */
  needed?: readonly string[];
  stages: Readonly<Record<string, StageState>>;
  usage: Usage;
  firstFailure?: { stageId: string; error: StepError };
}

export interface CoordinatorState {
  /** A Map: a transition copies it, and copying a 1,000-key object cost ~15 ms (a Map: ~0.5 ms). */
  executions: ReadonlyMap<string, Execution>;
  /** One circuit per LM model. */
  circuits: Readonly<Record<string, Circuit>>;
}

export const emptyCoordinator: CoordinatorState = { executions: new Map(), circuits: {} };

export interface CoordinatorConfig {
  transforms: Readonly<Record<string, Transform>>;
  circuit: CircuitPolicy;
}

export const defaultCoordinatorConfig: CoordinatorConfig = { transforms: {}, circuit: defaultCircuitPolicy };

/** What a transition knows besides the state: the time, the event that caused it, the registry. */
export interface TransitionContext {
  now: number;
  cause: Pick<Envelope, "id" | "correlationId">;
  variables: Readonly<Record<string, VariableValue>>;
  config: CoordinatorConfig;
}

export interface Transition_<S> {
  state: S;
  emit: Envelope[];
}

const iso = (ms: number) => new Date(ms).toISOString();

/** One transition in progress: a private copy of what it changes, and the events it emits. */
class Draft {
  readonly emit: Envelope[] = [];
  readonly executions: Map<string, Execution>;
  readonly circuits: Record<string, Circuit>;

  constructor(
    state: CoordinatorState,
    readonly ctx: TransitionContext,
  ) {
    this.executions = new Map(state.executions);
    this.circuits = { ...state.circuits };
  }

  result(): Transition_<CoordinatorState> {
    return { state: { executions: this.executions, circuits: this.circuits }, emit: this.emit };
  }

  /** Every event of an execution is keyed by its session key, as its request and steps are (one task). */
  header(exec: Execution, fact: string, key = exec.sessionKey) {
    return {
      id: derivedId(exec.executionId, fact),
      stream: `execution-${exec.executionId}`,
      key,
      occurredAt: iso(this.ctx.now),
      correlationId: exec.correlationId,
      causationId: this.ctx.cause.id,
    };
  }

  setStage(exec: Execution, stageId: string, stage: StageState): Execution {
    const next = { ...exec, stages: { ...exec.stages, [stageId]: stage } };
    this.executions.set(exec.executionId, next);
    return next;
  }

  current(executionId: string): Execution | undefined {
    return this.executions.get(executionId);
  }

  metric(
    exec: Execution,
    fact: string,
    name: string,
    value: number,
    labels: Record<string, string>,
    unit = "ms",
  ) {
    this.emit.push(
      MetricRecorded.create({
        ...this.header(exec, `metric/${fact}`, exec.program.programId),
        stream: `metrics-${exec.program.programId}`,
        data: {
          programId: exec.program.programId,
          name,
          value,
          unit,
          labels,
          executionId: exec.executionId,
        },
      }),
    );
  }

  circuitEvent(model: string, transition: Transition, reason: string) {
    if (!transition) return;
    const definition =
      transition === "opened" ? CircuitOpened : transition === "closed" ? CircuitClosed : CircuitHalfOpened;
    this.emit.push(
      definition.create({
        id: derivedId(this.ctx.cause.id, `circuit-${transition}/${model}`),
        stream: `circuit-${model}`,
        key: model,
        occurredAt: iso(this.ctx.now),
        correlationId: this.ctx.cause.correlationId,
        causationId: this.ctx.cause.id,
        data: { circuit: model, reason },
      }),
    );
  }

  circuitOf(model: string): Circuit {
    return this.circuits[model] ?? closedCircuit;
  }
}

/**
 * The key of an execution's result on dspex.results: its request id, or its evaluation's id for an
 * evaluation's example (so the evaluation processor's task holds the evaluation and all its results).
 */
export const resultKeyOf = (request: { requestId: string; evaluationId?: string }): string =>
  request.evaluationId ?? request.requestId;

const stageOf = (exec: Execution, stageId: string): StageDefinition =>
  exec.program.stages.find((s) => s.id === stageId)!;

export const stepIdOf = (executionId: string, stageId: string, attempt: number): string =>
  derivedId(executionId, `step/${stageId}/${attempt}`);

const completedOutputs = (exec: Execution): Record<string, JsonRecord> =>
  Object.fromEntries(
    Object.entries(exec.stages).flatMap(([id, s]) => (s.status === "completed" ? [[id, s.outputs]] : [])),
  );

const addUsage = (a: Usage, b: Usage): Usage => ({
  calls: a.calls + b.calls,
  promptTokens: a.promptTokens + b.promptTokens,
  completionTokens: a.completionTokens + b.completionTokens,
});

const isTerminal = (s: StageState) =>
  s.status === "completed" || s.status === "failed" || s.status === "skipped";

// ── finishing ────────────────────────────────────────────────────────────────

const outcomes = (exec: Execution) =>
  Object.fromEntries(
    Object.entries(exec.stages).flatMap(([id, s]) =>
      s.status === "completed"
        ? [[id, { outputs: s.outputs, durationMs: s.durationMs, attempts: s.attempts }]]
        : [],
    ),
  );

const finish = (draft: Draft, exec: Execution) => {
  const durationMs = Math.max(0, draft.ctx.now - exec.startedAt);
  const common = {
    requestId: exec.requestId,
    executionId: exec.executionId,
    programId: exec.program.programId,
    durationMs,
    usage: exec.usage,
    evaluationId: exec.evaluationId,
    exampleId: exec.exampleId,
  };
  const result = {
    ...draft.header(exec, "result", resultKeyOf(exec)),
    stream: `request-${exec.requestId}`,
  };
  if (exec.firstFailure) {
    draft.emit.push(
      ExecutionFailed.create({
        ...result,
        data: {
          ...common,
          failedStage: exec.firstFailure.stageId,
          error: exec.firstFailure.error,
          partial: outcomes(exec),
        },
      }),
    );
  } else {
    draft.emit.push(
      ExecutionCompleted.create({
        ...result,
        data: {
          ...common,
          outputs: programOutputs(exec.program, completedOutputs(exec)),
          stages: outcomes(exec),
        },
      }),
    );
  }
  draft.metric(exec, "execution", executionMetric, durationMs, {
    status: exec.firstFailure ? "failed" : "completed",
    origin: exec.evaluationId ? "evaluation" : "request",
  });
  draft.executions.delete(exec.executionId);
};

const finishIfDone = (draft: Draft, executionId: string) => {
  const exec = draft.current(executionId);
  if (!exec) return;
  const failFast = exec.firstFailure && exec.policy.onError === "fail-fast";
  if (failFast || Object.values(exec.stages).every(isTerminal)) finish(draft, exec);
};

// ── stage outcomes ───────────────────────────────────────────────────────────

/** What a stage's last attempt ran with, as metric labels: the model, the adapter and whether it was explored. */
const attemptLabels = (stage: StageState): Record<string, string> =>
  stage.status !== "running"
    ? {}
    : {
        model: stage.model,
        ...(stage.adapter ? { adapter: stage.adapter } : {}),
        ...(stage.explored ? { explored: "true" } : {}),
      };

const completeStage = (
  draft: Draft,
  exec: Execution,
  stageId: string,
  outputs: JsonRecord,
  attempt: number,
) => {
  const stage = exec.stages[stageId]!;
  const startedAt = stage.status === "running" ? stage.startedAt : draft.ctx.now;
  const durationMs = Math.max(0, draft.ctx.now - startedAt);
  const next = draft.setStage(exec, stageId, {
    status: "completed",
    outputs,
    durationMs,
    attempts: attempt + 1,
  });
  draft.emit.push(
    StageCompleted.create({
      ...draft.header(next, `stage-completed/${stageId}`),
      data: { executionId: exec.executionId, stageId, attempt, outputs, durationMs },
    }),
  );
  draft.metric(next, `stage/${stageId}`, stageMetric, durationMs, {
    ...attemptLabels(stage),
    stage: stageId,
    status: "completed",
  });
  advance(draft, exec.executionId);
};

const failStageFinally = (
  draft: Draft,
  exec: Execution,
  stageId: string,
  error: StepError,
  attempt: number,
) => {
  const stage = exec.stages[stageId]!;
  const startedAt =
    stage.status === "running" || stage.status === "retrying" ? stage.startedAt : draft.ctx.now;
  const durationMs = Math.max(0, draft.ctx.now - startedAt);
  const failed = draft.setStage(exec, stageId, {
    status: "failed",
    error,
    attempts: attempt + 1,
    durationMs,
  });
  const next = { ...failed, firstFailure: failed.firstFailure ?? { stageId, error } };
  draft.executions.set(exec.executionId, next);
  draft.metric(next, `stage/${stageId}`, stageMetric, durationMs, {
    ...attemptLabels(stage),
    stage: stageId,
    status: "failed",
    error: error.kind,
  });
  if (next.policy.onError === "fail-fast") finishIfDone(draft, exec.executionId);
  else advance(draft, exec.executionId);
};

const backoffOf = (policy: Required<ExecutionPolicy>, attempt: number) =>
  Math.min(policy.backoffMs * 2 ** attempt, policy.maxBackoffMs);

/** A failed attempt: retried with exponential backoff while retries are left, else the stage fails. */
/**
 * An attempt failed: the stage fails for good, or retries after its backoff — at once when the call
 * failed on a model (`failedModel`) and the stage's chain has a model it has not failed on yet.
 */
const failAttempt = (
  draft: Draft,
  exec: Execution,
  stageId: string,
  error: StepError,
  attempt: number,
  failedModel?: string,
) => {
  const willRetry = error.retryable && attempt < exec.policy.maxRetries;
  draft.emit.push(
    StageFailed.create({
      ...draft.header(exec, `stage-failed/${stageId}/${attempt}`),
      data: { executionId: exec.executionId, stageId, attempt, error, willRetry },
    }),
  );
  if (!willRetry) return failStageFinally(draft, exec, stageId, error, attempt);
  const stage = exec.stages[stageId]!;
  const startedAt = stage.status === "running" ? stage.startedAt : draft.ctx.now;
  const earlier = stage.status === "running" ? (stage.failedModels ?? []) : [];
  const failedModels = failedModel && !earlier.includes(failedModel) ? [...earlier, failedModel] : earlier;
  const fallBack =
    failedModel !== undefined &&
    modelChain(draft, exec, stageOf(exec, stageId)).some((m) => !failedModels.includes(m));
  const notBefore = draft.ctx.now + (fallBack ? 0 : backoffOf(exec.policy, attempt));
  const next = draft.setStage(exec, stageId, {
    status: "retrying",
    nextAttempt: attempt + 1,
    notBefore,
    startedAt,
    ...(failedModels.length > 0 ? { failedModels } : {}),
  });
  if (notBefore <= draft.ctx.now) {
    draft.emit.push(scheduled(draft, next, stageId, attempt + 1, notBefore));
    dispatch(draft, next, stageOf(next, stageId), attempt + 1, startedAt);
  }
};

const scheduled = (draft: Draft, exec: Execution, stageId: string, attempt: number, notBefore: number) =>
  StageScheduled.create({
    ...draft.header(exec, `stage-scheduled/${stageId}/${attempt}`),
    data: { executionId: exec.executionId, stageId, attempt, notBefore: iso(notBefore) },
  });

// ── dispatch ─────────────────────────────────────────────────────────────────

const settingsOf = (draft: Draft, exec: Execution, stage: StageDefinition) =>
  stepSettings(stage, resolveVariables(exec.program, stage, draft.ctx.variables, exec.overrides));

/** The models a stage may call, the chosen one first. */
const modelChain = (draft: Draft, exec: Execution, stage: StageDefinition): string[] => {
  const settings = settingsOf(draft, exec, stage);
  return [settings.lm.model, ...settings.fallbacks];
};

/** The first model of the chain whose circuit admits a call, with the circuit events that decision makes. */
const route = (draft: Draft, chain: readonly string[], stepId: string): string | undefined => {
  for (const model of chain) {
    const admitted = admit(draft.circuitOf(model), draft.ctx.now, draft.ctx.config.circuit, stepId);
    if (!admitted.admitted) continue;
    draft.circuits[model] = admitted.circuit;
    draft.circuitEvent(model, admitted.transition, `cooldown over: step ${stepId} probes ${model}`);
    return model;
  }
  return undefined;
};

const dispatch = (
  draft: Draft,
  exec: Execution,
  stage: StageDefinition,
  attempt: number,
  startedAt: number,
) => {
  const { now } = draft.ctx;
  const settings = settingsOf(draft, exec, stage);
  const stepId = stepIdOf(exec.executionId, stage.id, attempt);
  const before = exec.stages[stage.id];
  const failedModels = before?.status === "retrying" ? (before.failedModels ?? []) : [];
  const chain = [settings.lm.model, ...settings.fallbacks];
  const { adapter, explored } = adapterOf(settings, exec.executionId, stage.id);
  const retrieve = settings.module === "Retrieve" ? retrieveConfigOf(stage.config) : undefined;
  const running = {
    status: "running",
    attempt,
    stepId,
    startedAt,
    deadline: now + exec.policy.stepTimeoutMs,
    ...(failedModels.length > 0 ? { failedModels } : {}),
    ...(adapter ? { adapter, ...(explored ? { explored } : {}) } : {}),
  };
  if (retrieve && !("embedder" in retrieve)) {
    const next = draft.setStage(exec, stage.id, { ...running, model: settings.lm.model } as StageState);
    const error = {
      kind: "bad_request" as const,
      message: `stage ${stage.id}: ${retrieve.error}`,
      retryable: false,
    };
    return failAttempt(draft, next, stage.id, error, attempt);
  }
  // Models this stage has not failed on come first; the failed ones stay as a last resort.
  const model = route(draft, [...chain.filter((m) => !failedModels.includes(m)), ...failedModels], stepId);
  if (!model) {
    const next = draft.setStage(exec, stage.id, { ...running, model: settings.lm.model } as StageState);
    const tried = [settings.lm.model, ...settings.fallbacks].join(", ");
    return failAttempt(
      draft,
      next,
      stage.id,
      { kind: "lm_error", message: `every model's circuit is open (${tried})`, retryable: true },
      attempt,
    );
  }
  if (model !== settings.lm.model) {
    draft.emit.push(
      StepRerouted.create({
        ...draft.header(exec, `rerouted/${stage.id}/${attempt}`),
        data: {
          executionId: exec.executionId,
          stageId: stage.id,
          from: settings.lm.model,
          to: model,
          reason: failedModels.includes(settings.lm.model)
            ? `fallback: ${settings.lm.model} failed attempt ${attempt - 1} of this stage`
            : `circuit for ${settings.lm.model} is open`,
        },
      }),
    );
  }
  const inputs = stageInputs(stage, exec.inputs, completedOutputs(exec));
  const next = draft.setStage(exec, stage.id, { ...running, model } as StageState);
  draft.emit.push(
    StepDispatched.create({
      ...draft.header(next, `dispatched/${stage.id}/${attempt}`, exec.sessionKey),
      data: {
        stepId,
        executionId: exec.executionId,
        stageId: stage.id,
        attempt,
        programId: exec.program.programId,
        module: settings.module,
        signature: {
          ...stage.signature,
          instructions: settings.instructions ?? stage.signature.instructions,
        },
        inputs,
        demos: settings.demos,
        lm: { ...settings.lm, model, ...(adapter ? { adapter } : {}) },
        tools: Array.isArray(stage.config.tools) ? stage.config.tools.map(String) : [],
        maxIters: typeof stage.config.maxIters === "number" ? stage.config.maxIters : 5,
        ...(retrieve ? { retrieve } : {}),
        variableVersions: settings.variableVersions,
        sessionKey: exec.sessionKey,
        timeoutMs: exec.policy.stepTimeoutMs,
      },
    }),
  );
};

/** Runs (native) or dispatches (DSPy) a stage whose dependencies all completed. */
const startStage = (draft: Draft, exec: Execution, stage: StageDefinition) => {
  const inputs = stageInputs(stage, exec.inputs, completedOutputs(exec));
  const checked = checkFields(stage.signature.inputs, inputs);
  if (!checked.ok) {
    const error: StepError = {
      kind: "bad_request",
      message: `stage ${stage.id}: ${checked.reason}`,
      retryable: false,
    };
    return failAttempt(draft, exec, stage.id, error, 0);
  }
  if (stage.runtime === "dspy") return dispatch(draft, exec, stage, 0, draft.ctx.now);
  const result = runNativeStage(stage, checked.values, draft.ctx.config.transforms);
  const outputs = result.ok ? checkFields(stage.signature.outputs, result.outputs) : undefined;
  if (result.ok && outputs?.ok) return completeStage(draft, exec, stage.id, outputs.values, 0);
  const error: StepError = result.ok
    ? {
        kind: "invalid_output",
        message: `stage ${stage.id}: ${outputs!.ok ? "" : outputs!.reason}`,
        retryable: false,
      }
    : result.error;
  failAttempt(draft, exec, stage.id, error, 0);
};

/** Starts every waiting stage whose dependencies completed; skips those behind a failed one. */
const advance = (draft: Draft, executionId: string) => {
  for (let progressed = true; progressed; ) {
    progressed = false;
    const exec = draft.current(executionId);
    if (!exec) return;
    for (const stage of exec.program.stages) {
      const current = draft.current(executionId);
      if (current?.stages[stage.id]?.status !== "waiting") continue;
      const dependencies = stage.dependsOn.map((d) => current.stages[d]!);
      const blocked = stage.dependsOn.find((_, i) => {
        const s = dependencies[i]!;
        return s.status === "failed" || s.status === "skipped";
      });
      if (blocked) {
        const reason = `skipped: upstream stage ${blocked} did not complete`;
        const skipped = draft.setStage(current, stage.id, { status: "skipped", reason });
        draft.emit.push(
          StageFailed.create({
            ...draft.header(skipped, `stage-failed/${stage.id}/skipped`),
            data: {
              executionId,
              stageId: stage.id,
              attempt: 0,
              error: { kind: "cancelled", message: reason, retryable: false },
              willRetry: false,
            },
          }),
        );
        progressed = true;
      } else if (dependencies.every((s) => s.status === "completed")) {
        startStage(draft, current, stage);
        progressed = true;
      }
    }
  }
  finishIfDone(draft, executionId);
};

// ── the processor's transitions ──────────────────────────────────────────────

export type ExecutionInit = Omit<Execution, "stages" | "usage" | "firstFailure">;

/** A new execution: every stage without dependencies starts now. */
export const startExecution = (
  state: CoordinatorState,
  init: ExecutionInit,
  ctx: TransitionContext,
): Transition_<CoordinatorState> => {
  const draft = new Draft(state, ctx);
  const stages = Object.fromEntries(
    init.program.stages.map((s): [string, StageState] => [
      s.id,
      !init.needed || init.needed.includes(s.id)
        ? { status: "waiting" }
        : { status: "skipped", reason: "not needed for the outputs asked for" },
    ]),
  );
  draft.executions.set(init.executionId, {
    ...init,
    stages,
    usage: noUsage(),
  });
  advance(draft, init.executionId);
  return draft.result();
};

const runningAttempt = (
  state: CoordinatorState,
  data: { executionId: string; stageId: string; stepId: string },
) => {
  const exec = state.executions.get(data.executionId);
  const stage = exec?.stages[data.stageId];
  return exec && stage?.status === "running" && stage.stepId === data.stepId ? { exec, stage } : undefined;
};

const onStepCompleted = (
  state: CoordinatorState,
  event: EventOf<"StepCompleted">,
  ctx: TransitionContext,
): Transition_<CoordinatorState> => {
  const found = runningAttempt(state, event.data);
  if (!found) return { state, emit: [] };
  const { exec, stage } = found;
  const draft = new Draft(state, ctx);
  const definition = stageOf(exec, event.data.stageId);
  const outputs = checkFields(definition.signature.outputs, event.data.outputs);
  const withUsage = { ...exec, usage: addUsage(exec.usage, event.data.usage) };
  draft.executions.set(exec.executionId, withUsage);
  if (!outputs.ok) {
    const message = `stage ${definition.id} returned invalid outputs: ${outputs.reason}`;
    failAttempt(
      draft,
      withUsage,
      definition.id,
      { kind: "invalid_output", message, retryable: true },
      stage.attempt,
    );
    return draft.result();
  }
  const healed = recordSuccess(draft.circuitOf(stage.model));
  draft.circuits[stage.model] = healed.circuit;
  draft.circuitEvent(stage.model, healed.transition, `probe step ${stage.stepId} succeeded`);
  // What the provider charged for the step's calls, when it says (local models cost nothing: no metric).
  const cost = event.data.lmCalls.reduce((sum, call) => sum + (call.cost ?? 0), 0);
  if (cost > 0)
    draft.metric(
      withUsage,
      `cost/${definition.id}/${stage.attempt}`,
      stageCostMetric,
      cost,
      {
        stage: definition.id,
        model: stage.model,
      },
      "USD",
    );
  completeStage(draft, withUsage, definition.id, outputs.values, stage.attempt);
  return draft.result();
};

const onStepFailed = (
  state: CoordinatorState,
  event: EventOf<"StepFailed">,
  ctx: TransitionContext,
): Transition_<CoordinatorState> => {
  const found = runningAttempt(state, event.data);
  if (!found) return { state, emit: [] };
  const { exec, stage } = found;
  const draft = new Draft(state, ctx);
  if (countsAgainstModel(event.data.error.kind)) {
    const hurt = recordFailure(draft.circuitOf(stage.model), ctx.now, ctx.config.circuit);
    draft.circuits[stage.model] = hurt.circuit;
    draft.circuitEvent(stage.model, hurt.transition, `${event.data.error.kind}: ${event.data.error.message}`);
  }
  const onModel = countsAgainstModel(event.data.error.kind) ? stage.model : undefined;
  failAttempt(draft, exec, event.data.stageId, event.data.error, stage.attempt, onModel);
  return draft.result();
};

/** A retry that came due (the tick emitted its StageScheduled): dispatch it. */
const onStageScheduled = (
  state: CoordinatorState,
  event: EventOf<"StageScheduled">,
  ctx: TransitionContext,
): Transition_<CoordinatorState> => {
  const exec = state.executions.get(event.data.executionId);
  const stage = exec?.stages[event.data.stageId];
  if (!exec || stage?.status !== "retrying" || stage.nextAttempt !== event.data.attempt)
    return { state, emit: [] };
  const draft = new Draft(state, ctx);
  dispatch(draft, exec, stageOf(exec, event.data.stageId), event.data.attempt, stage.startedAt);
  return draft.result();
};

export const coordinate = (
  state: CoordinatorState,
  event: DspexEvent,
  ctx: TransitionContext,
): Transition_<CoordinatorState> => {
  switch (event.type) {
    case "StepCompleted":
      return onStepCompleted(state, event, ctx);
    case "StepFailed":
      return onStepFailed(state, event, ctx);
    case "StageScheduled":
      return onStageScheduled(state, event, ctx);
    default:
      return { state, emit: [] };
  }
};

/**
 * Time passing: a running attempt past its deadline gets a `StepFailed{timeout}`, a retry past its
 * backoff a `StageScheduled`. Both come back as inputs; the tick itself only sets soft marks.
 */
export const coordinatorTick = (state: CoordinatorState, now: number): Transition_<CoordinatorState> => {
  const emit: Envelope[] = [];
  let executions: Map<string, Execution> | undefined;
  for (const exec of state.executions.values()) {
    for (const [stageId, stage] of Object.entries(exec.stages)) {
      const header = (fact: string, key = exec.sessionKey) => ({
        id: derivedId(exec.executionId, fact),
        stream: `execution-${exec.executionId}`,
        key,
        occurredAt: iso(now),
        correlationId: exec.correlationId,
        causationId: null,
      });
      let marked: StageState | undefined;
      if (stage.status === "running" && !stage.timeoutSent && now >= stage.deadline) {
        emit.push(
          StepFailed.create({
            ...header(`timeout/${stageId}/${stage.attempt}`),
            data: {
              stepId: stage.stepId,
              executionId: exec.executionId,
              stageId,
              attempt: stage.attempt,
              worker: "coordinator",
              error: {
                kind: "timeout",
                message: `stage ${stageId} attempt ${stage.attempt} got no result within ${exec.policy.stepTimeoutMs} ms`,
                retryable: true,
              },
              latencyMs: exec.policy.stepTimeoutMs,
            },
          }),
        );
        marked = { ...stage, timeoutSent: true };
      }
      if (stage.status === "retrying" && !stage.scheduleSent && now >= stage.notBefore) {
        emit.push(
          StageScheduled.create({
            ...header(`stage-scheduled/${stageId}/${stage.nextAttempt}`),
            data: {
              executionId: exec.executionId,
              stageId,
              attempt: stage.nextAttempt,
              notBefore: iso(stage.notBefore),
            },
          }),
        );
        marked = { ...stage, scheduleSent: true };
      }
      if (marked) {
        executions ??= new Map(state.executions);
        const latest = executions.get(exec.executionId)!;
        executions.set(exec.executionId, { ...latest, stages: { ...latest.stages, [stageId]: marked } });
      }
    }
  }
  return { state: executions ? { ...state, executions } : state, emit };
};

/** The earliest time the tick has something to do, if any. */
export const nextDeadline = (state: CoordinatorState): number | undefined => {
  let next: number | undefined;
  for (const exec of state.executions.values())
    for (const stage of Object.values(exec.stages)) {
      const due =
        stage.status === "running" && !stage.timeoutSent
          ? stage.deadline
          : stage.status === "retrying" && !stage.scheduleSent
            ? stage.notBefore
            : undefined;
      if (due !== undefined && (next === undefined || due < next)) next = due;
    }
  return next;
};

export const coordinatorTopics = [Topics.stepResults, Topics.executions] as const;
