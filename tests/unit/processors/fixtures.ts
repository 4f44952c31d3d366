import {
  type PipelineConfig,
  type PipelineState,
  pipelineProcessor,
  registryTable,
} from "../../../processors/pipeline/pipeline.ts";
import type { Registry } from "../../../processors/pipeline/registry.ts";
import type { Processor } from "../../../processors/runtime/index.ts";
import type { Envelope } from "../../../streams/envelope.ts";
import {
  type DspexEvent,
  definitionOf,
  type EventOf,
  ExecutionRequested,
  type ProgramDefinition,
  ProgramRegistered,
  type StageDefinition,
  StepCompleted,
  type StepError,
  StepFailed,
  VariableChanged,
} from "../../../streams/events/index.ts";
import { Topics } from "../../../streams/topics.ts";

export const T0 = Date.parse("2026-01-01T00:00:00.000Z");

const signature = (inputs: string[], outputs: string[]) => ({
  instructions: "",
  inputs: inputs.map((spec) => {
    const [name, type = "str"] = spec.split(":").map((s) => s.trim()) as [string, string?];
    return { name, type, optional: false };
  }),
  outputs: outputs.map((spec) => {
    const [name, type = "str"] = spec.split(":").map((s) => s.trim()) as [string, string?];
    return { name, type, optional: false };
  }),
});

/** A stage from a compact description: `stage("b", ["a.answer -> x"])`-style helpers stay out; plain fields. */
export const stage = (
  id: string,
  spec: {
    inputs: string[];
    outputs: string[];
    dependsOn?: string[];
    runtime?: "dspy" | "native";
    module?: string;
  } & Partial<Pick<StageDefinition, "bindings" | "config" | "variables">>,
): StageDefinition => ({
  id,
  runtime: spec.runtime ?? "dspy",
  module: spec.module ?? "Predict",
  signature: signature(spec.inputs, spec.outputs),
  dependsOn: spec.dependsOn ?? [],
  bindings: spec.bindings ?? {},
  config: spec.config ?? {},
  variables: spec.variables ?? [],
});

export const program = (
  programId: string,
  stages: StageDefinition[],
  outputs: Record<string, string>,
  extra: Partial<ProgramDefinition> = {},
): ProgramDefinition => ({
  programId,
  version: 1,
  description: "",
  inputs: [{ name: "question", type: "str", optional: false }],
  outputs,
  stages,
  variables: [],
  constraints: [],
  ...extra,
});

export const registered = (definition: ProgramDefinition) =>
  ProgramRegistered.create({
    stream: `program-${definition.programId}`,
    key: definition.programId,
    data: definition,
  });

export const requested = (
  requestId: string,
  programId: string,
  inputs: Record<string, unknown>,
  extra: Partial<EventOf<"ExecutionRequested">["data"]> = {},
) =>
  ExecutionRequested.create({
    stream: `request-${requestId}`,
    key: extra.sessionId ?? requestId,
    data: { requestId, programId, inputs: inputs as never, ...extra },
  });

export const variableChanged = (variableId: string, value: unknown, version: number) =>
  VariableChanged.create({
    stream: `variable-${variableId}`,
    key: variableId,
    data: { variableId, value: value as never, previous: null, version, actor: "test" },
  });

type Dispatched = EventOf<"StepDispatched">;

export const completed = (step: Dispatched, outputs: Record<string, unknown>) =>
  StepCompleted.create({
    stream: `execution-${step.data.executionId}`,
    key: step.data.executionId,
    data: {
      stepId: step.data.stepId,
      executionId: step.data.executionId,
      stageId: step.data.stageId,
      attempt: step.data.attempt,
      outputs: outputs as never,
      usage: { calls: 1, promptTokens: 3, completionTokens: 2 },
      latencyMs: 5,
    },
  });

export const failed = (step: Dispatched, error: StepError) =>
  StepFailed.create({
    stream: `execution-${step.data.executionId}`,
    key: step.data.executionId,
    data: {
      stepId: step.data.stepId,
      executionId: step.data.executionId,
      stageId: step.data.stageId,
      attempt: step.data.attempt,
      error,
    },
  });

export const lmError: StepError = { kind: "lm_error", message: "provider said 500", retryable: true };

/** Drives the pipeline processor with plain events: what it emits for each, and its ticks. */
export const scenario = (config: PipelineConfig = {}, given: Envelope[] = []) => {
  const processor: Processor<PipelineState, Registry> = pipelineProcessor(config);
  let state = processor.initialState;
  let table = registryTable.initial;
  let offset = 0;
  /** Registry events go to the table, as every instance's table reader folds them; the rest to the task. */
  const when = (event: Envelope, now = T0): DspexEvent[] => {
    if (registryTable.topics.includes(definitionOf(event.type)!.topic)) {
      table = registryTable.fold(table, event as DspexEvent);
      return [];
    }
    const result = processor.handle(state, event as DspexEvent, {
      now,
      consumer: "test",
      key: event.key,
      source: { topic: Topics.requests, partition: 0, offset: offset++ },
      table,
    });
    state = result.state;
    return result.emit as DspexEvent[];
  };
  const tick = (now: number): DspexEvent[] => {
    const result = processor.tick!(state, now);
    state = result.state;
    return result.emit as DspexEvent[];
  };
  for (const event of given) when(event);
  return {
    when,
    tick,
    state: () => state,
    nextTickAt: () => processor.nextTickAt!(state),
    pausedTopics: () => processor.pausedTopics!(state),
  };
};

export const types = (events: readonly DspexEvent[]) => events.map((e) => e.type);

export const ofType = <T extends DspexEvent["type"]>(events: readonly DspexEvent[], type: T): EventOf<T>[] =>
  events.filter((e): e is EventOf<T> => e.type === type);

export const only = <T extends DspexEvent["type"]>(events: readonly DspexEvent[], type: T): EventOf<T> => {
  const found = ofType(events, type);
  if (found.length !== 1) throw new Error(`expected one ${type}, got ${types(events).join(", ")}`);
  return found[0]!;
};
