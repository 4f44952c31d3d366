import type { Envelope } from "../../streams/envelope.ts";
import { DeadLettered, type DspexEvent } from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import type { EventLog } from "../../streams/log.ts";
import { deadLetterContent } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { defaultCircuitPolicy } from "../adaptation/circuit.ts";
import type { Transform } from "../native/index.ts";
import {
  type Output,
  type Processor,
  type ProcessorContext,
  type RuntimeOptions,
  runProcessor,
} from "../runtime.ts";
import {
  type CoordinatorConfig,
  type CoordinatorState,
  coordinate,
  coordinatorTick,
  emptyCoordinator,
  nextDeadline,
  startExecution,
} from "./coordinator.ts";
import { admitRequest, defaultIntakeConfig, type IntakeConfig } from "./intake.ts";
import { emptyRegistry, foldRegistry, type Registry } from "./registry.ts";
import { RequestIds } from "./request-ids.ts";

export interface PipelineState {
  registry: Registry;
  /** Request ids already taken in: a request published twice runs once. */
  requests: RequestIds;
  coordinator: CoordinatorState;
}

export const emptyPipeline: PipelineState = {
  registry: emptyRegistry,
  requests: RequestIds.empty,
  coordinator: emptyCoordinator,
};

export interface PipelineConfig {
  /** The consumer group (one pipeline per group). */
  name?: string;
  intake?: Partial<IntakeConfig>;
  circuit?: Partial<CoordinatorConfig["circuit"]>;
  /** Named pure functions for `transform` stages, besides the built-in ones. */
  transforms?: Readonly<Record<string, Transform>>;
}

/** A program that cannot run is dead-lettered when it is registered, with the reason. */
const refusedProgram = (event: DspexEvent, problem: string, ctx: ProcessorContext): Envelope =>
  DeadLettered.create({
    id: derivedId(event.id, `dead-letter:${ctx.consumer}`),
    stream: `dlq-${Topics.variables}`,
    key: event.key,
    occurredAt: new Date(ctx.now).toISOString(),
    correlationId: event.correlationId,
    causationId: event.id,
    data: {
      source: {
        topic: ctx.source.topic,
        partition: ctx.source.partition,
        offset: String(ctx.source.offset),
        consumer: ctx.consumer,
      },
      ...deadLetterContent(`program cannot run: ${problem}`, event),
    },
  });

/** Intake, planner and coordinator as one processor: one hop per step, one state to rebuild. */
export const pipelineProcessor = (config: PipelineConfig = {}): Processor<PipelineState> => {
  const intakeConfig = { ...defaultIntakeConfig, ...config.intake };
  const coordinatorConfig: CoordinatorConfig = {
    transforms: config.transforms ?? {},
    circuit: { ...defaultCircuitPolicy, ...config.circuit },
  };
  const handle = (state: PipelineState, event: DspexEvent, ctx: ProcessorContext): Output<PipelineState> => {
    const transition = {
      now: ctx.now,
      cause: event,
      variables: state.registry.variables,
      config: coordinatorConfig,
    };
    switch (event.type) {
      case "ProgramRegistered":
      case "VariableDeclared":
      case "VariableChanged": {
        const registry = foldRegistry(state.registry, event);
        const problem =
          event.type === "ProgramRegistered" ? registry.programs[event.data.programId]?.problem : undefined;
        return { state: { ...state, registry }, emit: problem ? [refusedProgram(event, problem, ctx)] : [] };
      }
      case "ExecutionRequested": {
        if (state.requests.has(event.data.requestId)) return { state, emit: [] };
        const requests = state.requests.add(event.data.requestId);
        const inFlight = state.coordinator.executions.size;
        const decision = admitRequest(state.registry, inFlight, event, ctx, intakeConfig);
        if (decision.kind === "rejected") return { state: { ...state, requests }, emit: decision.emit };
        const started = startExecution(state.coordinator, decision.execution, transition);
        return {
          state: { ...state, requests, coordinator: started.state },
          emit: [...decision.emit, ...started.emit],
        };
      }
      default: {
        const next = coordinate(state.coordinator, event, transition);
        return next.state === state.coordinator
          ? { state, emit: next.emit }
          : { state: { ...state, coordinator: next.state }, emit: next.emit };
      }
    }
  };
  return {
    name: config.name ?? "dspex-pipeline",
    topics: [Topics.variables, Topics.requests, Topics.executions, Topics.stepResults],
    initialState: emptyPipeline,
    handle,
    tick: (state, now) => {
      const next = coordinatorTick(state.coordinator, now);
      return {
        state: next.state === state.coordinator ? state : { ...state, coordinator: next.state },
        emit: next.emit,
      };
    },
    nextTickAt: (state) => nextDeadline(state.coordinator),
  };
};

/** Runs the pipeline on a log until stopped. */
export const startPipeline = (log: EventLog, config: PipelineConfig = {}, runtime: RuntimeOptions = {}) =>
  runProcessor(log, pipelineProcessor(config), runtime);
