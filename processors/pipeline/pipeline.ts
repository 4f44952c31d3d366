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
  type Execution,
  emptyCoordinator,
  nextDeadline,
  startExecution,
} from "./coordinator.ts";
import { admitRequest, defaultIntakeConfig, executionIdOf, type IntakeConfig } from "./intake.ts";
import { emptyRegistry, foldRegistry, type Registry } from "./registry.ts";
import { RequestIds } from "./request-ids.ts";

export interface PipelineState {
  registry: Registry;
  /**
   * Recent request ids taken in (a bounded window): with the executions in flight, what makes a request
   * published twice run once.
   */
  requests: RequestIds;
  coordinator: CoordinatorState;
}

export const emptyPipeline: PipelineState = {
  registry: emptyRegistry,
  requests: RequestIds.window(10_000),
  coordinator: emptyCoordinator,
};

/** The pipeline's state as JSON, for snapshots; the tick's soft marks are left out, as a rebuild forgets them. */
export const pipelineSnapshot = (state: PipelineState) => ({
  registry: state.registry,
  requests: state.requests.list(),
  requestWindow: state.requests.capacity,
  circuits: state.coordinator.circuits,
  executions: [...state.coordinator.executions.values()].map((exec) => ({
    ...exec,
    stages: Object.fromEntries(
      Object.entries(exec.stages).map(([id, stage]) => {
        if (stage.status === "running") {
          const { timeoutSent: _, ...rest } = stage;
          return [id, rest];
        }
        if (stage.status === "retrying") {
          const { scheduleSent: _, ...rest } = stage;
          return [id, rest];
        }
        return [id, stage];
      }),
    ),
  })),
});

export const restorePipeline = (saved: unknown): PipelineState => {
  const snapshot = saved as ReturnType<typeof pipelineSnapshot>;
  return {
    registry: snapshot.registry,
    requests: RequestIds.of(snapshot.requests, snapshot.requestWindow ?? Number.POSITIVE_INFINITY),
    coordinator: {
      circuits: snapshot.circuits,
      executions: new Map(snapshot.executions.map((exec) => [exec.executionId, exec as Execution])),
    },
  };
};

export interface PipelineConfig {
  /** The consumer group (one pipeline per group). */
  name?: string;
  intake?: Partial<IntakeConfig>;
  circuit?: Partial<CoordinatorConfig["circuit"]>;
  /** Named pure functions for `transform` stages, besides the built-in ones. */
  transforms?: Readonly<Record<string, Transform>>;
  /**
   * How many finished request ids are remembered to drop a request published again (default 10,000);
   * requests in flight are always recognised.
   */
  requestWindow?: number;
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
        const { requestId } = event.data;
        if (state.requests.has(requestId) || state.coordinator.executions.has(executionIdOf(requestId)))
          return { state, emit: [] };
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
    initialState:
      config.requestWindow === undefined
        ? emptyPipeline
        : { ...emptyPipeline, requests: RequestIds.window(config.requestWindow) },
    handle,
    version: 1,
    snapshotOf: pipelineSnapshot,
    restore: restorePipeline,
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
