import { z } from "zod";
import { causedBy, type Envelope } from "../../streams/envelope.ts";
import { describeIssues } from "../../streams/events/define.ts";
import { type DspexEvent, ExecutionRequested, ProgramDefinition } from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import type { EventLog } from "../../streams/log.ts";
import { Topics } from "../../streams/topics.ts";
import { defaultCircuitPolicy } from "../adaptation/circuit.ts";
import type { Transform } from "../native/index.ts";
import {
  type Output,
  type Processor,
  type ProcessorContext,
  type RuntimeOptions,
  runProcessor,
  type Table,
} from "../runtime/index.ts";
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
import {
  admitRequest,
  defaultIntakeConfig,
  executionIdOf,
  type IntakeConfig,
  type Request,
  rejection,
  rejectUnreadable,
  sessionKeyOf,
} from "./intake.ts";
import { emptyRegistry, foldRegistry, type Registry } from "./registry.ts";
import { RequestIds } from "./request-ids.ts";
import {
  defaultSessionTtlMs,
  endSession,
  expireSessions,
  nextSessionExpiry,
  type Sessions,
  touchSession,
} from "./sessions.ts";

/** One task's state: the requests of its partition and the executions they started. */
export interface PipelineState {
  /**
   * Recent request ids taken in (a bounded window): with the executions in flight, what makes a request
   * published twice run once.
   */
  requests: RequestIds;
  /** Requests taken in while the task was full, oldest first: each starts when an execution finishes. */
  waiting: readonly Request[];
  coordinator: CoordinatorState;
  /** The sessions requests named, by id: when each was last active. */
  sessions: Sessions;
}

export const emptyPipeline: PipelineState = {
  requests: RequestIds.window(10_000),
  waiting: [],
  coordinator: emptyCoordinator,
  sessions: new Map(),
};

/** The pipeline's state as JSON, for snapshots; the tick's soft marks are left out, as a rebuild forgets them. */
export const pipelineSnapshot = (state: PipelineState) => ({
  requests: state.requests.list(),
  requestWindow: state.requests.capacity,
  waiting: state.waiting,
  circuits: state.coordinator.circuits,
  sessions: [...state.sessions].map(([sessionId, { lastActivity }]) => [sessionId, lastActivity] as const),
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

/**
 * What a snapshot must hold to be restored. The executions are checked as far as the coordinator reads
 * them blindly (ids, program, stage statuses); a snapshot written by this code passes by construction, so
 * this catches a damaged or foreign one, which the runtime then ignores (it rebuilds from the log).
 */
const SavedPipeline = z.object({
  requests: z.array(z.string()),
  requestWindow: z.number().positive().nullish(),
  waiting: z.array(ExecutionRequested.envelope),
  circuits: z.record(z.string(), z.looseObject({ status: z.enum(["closed", "open", "half-open"]) })),
  sessions: z.array(z.tuple([z.string(), z.number()])),
  executions: z.array(
    z.looseObject({
      executionId: z.string(),
      requestId: z.string(),
      sessionKey: z.string(),
      program: ProgramDefinition,
      stages: z.record(
        z.string(),
        z.looseObject({
          status: z.enum(["waiting", "running", "retrying", "completed", "failed", "skipped"]),
        }),
      ),
      startedAt: z.number(),
    }),
  ),
});

export const restorePipeline = (saved: unknown): PipelineState => {
  const parsed = SavedPipeline.safeParse(saved);
  if (!parsed.success) throw new Error(`not a pipeline snapshot: ${describeIssues(parsed.error)}`);
  const snapshot = parsed.data as unknown as ReturnType<typeof pipelineSnapshot>;
  return {
    requests: RequestIds.of(snapshot.requests, snapshot.requestWindow ?? Number.POSITIVE_INFINITY),
    waiting: snapshot.waiting,
    sessions: new Map(snapshot.sessions.map(([sessionId, lastActivity]) => [sessionId, { lastActivity }])),
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
  /** How long a session (a request's `sessionId`) lives without a request before `SessionExpired`; 0: for ever. */
  sessionTtlMs?: number;
}

/** Programs and variables, read whole by every pipeline instance from dspex.variables. */
export const registryTable: Table<Registry> = {
  topics: [Topics.variables],
  initial: emptyRegistry,
  fold: foldRegistry,
  isBehindFor: (registry, event) =>
    event.type === "ExecutionRequested" && registry.programs[event.data.programId] === undefined,
};

type Context = ProcessorContext<Registry>;

/**
 * A request that arrived on another key than its session's (a client keying by something else) is
 * published again under its session key, so its execution's task is the one its steps answer to.
 */
const rekeyed = (request: Request, ctx: Context): Envelope =>
  ExecutionRequested.create({
    id: derivedId(request.id, "rekeyed"),
    stream: request.stream,
    key: sessionKeyOf(request.data),
    occurredAt: new Date(ctx.now).toISOString(),
    ...causedBy(request),
    data: request.data,
  });

const inFlight = (state: PipelineState) => state.coordinator.executions.size;

/** A session is busy while one of its executions runs or one of its requests waits. */
const busySessions = (state: PipelineState): Set<string> =>
  new Set([
    ...[...state.coordinator.executions.values()].map((exec) => exec.sessionKey),
    ...state.waiting.map((request) => sessionKeyOf(request.data)),
  ]);

/** Intake, planner and coordinator as one processor: one hop per step, one state per task. */
export const pipelineProcessor = (config: PipelineConfig = {}): Processor<PipelineState, Registry> => {
  const intakeConfig = { ...defaultIntakeConfig, ...config.intake };
  const sessionTtlMs = config.sessionTtlMs ?? defaultSessionTtlMs;
  const coordinatorConfig: CoordinatorConfig = {
    transforms: config.transforms ?? {},
    circuit: { ...defaultCircuitPolicy, ...config.circuit },
  };
  const transitionOf = (event: DspexEvent, ctx: Context) => ({
    now: ctx.now,
    cause: event,
    variables: ctx.table.variables,
    config: coordinatorConfig,
  });

  /** Starts the request, or rejects it with the reason. */
  const start = (state: PipelineState, request: Request, ctx: Context): Output<PipelineState> => {
    const deadline = request.data.deadline;
    if (deadline !== undefined && Date.parse(deadline) < ctx.now) {
      const reason = `saturated: the request waited for a free slot (the limit is ${intakeConfig.maxInFlight} executions in flight) past its deadline ${deadline}`;
      return { state, emit: [rejection(request, ctx, "saturated", reason)] };
    }
    const decision = admitRequest(ctx.table, request, ctx);
    if (decision.kind === "rejected") return { state, emit: decision.emit };
    const started = startExecution(state.coordinator, decision.execution, transitionOf(request, ctx));
    return { state: { ...state, coordinator: started.state }, emit: [...decision.emit, ...started.emit] };
  };

  /** Starts waiting requests while there is room. */
  const startWaiting = (state: PipelineState, ctx: Context): Output<PipelineState> => {
    let next = state;
    const emit: Envelope[] = [];
    while (next.waiting.length > 0 && inFlight(next) < intakeConfig.maxInFlight) {
      const [first, ...rest] = next.waiting;
      const result = start({ ...next, waiting: rest }, first!, ctx);
      next = result.state;
      emit.push(...result.emit);
    }
    return { state: next, emit };
  };

  const takeRequest = (state: PipelineState, request: Request, ctx: Context): Output<PipelineState> => {
    const { requestId } = request.data;
    if (state.requests.has(requestId) || state.coordinator.executions.has(executionIdOf(requestId)))
      return { state, emit: [] };
    if (ctx.key !== sessionKeyOf(request.data)) return { state, emit: [rekeyed(request, ctx)] };
    const taken = {
      ...state,
      requests: state.requests.add(requestId),
      sessions: touchSession(state.sessions, request),
    };
    if (inFlight(taken) < intakeConfig.maxInFlight && taken.waiting.length === 0)
      return start(taken, request, ctx);
    if (intakeConfig.whenFull === "reject") {
      const reason = `saturated: ${inFlight(taken)} executions in flight, the limit is ${intakeConfig.maxInFlight}; retry later`;
      return { state: taken, emit: [rejection(request, ctx, "saturated", reason)] };
    }
    return { state: { ...taken, waiting: [...taken.waiting, request] }, emit: [] };
  };

  const handle = (state: PipelineState, event: DspexEvent, ctx: Context): Output<PipelineState> => {
    if (event.type === "ExecutionRequested") return takeRequest(state, event, ctx);
    if (event.type === "SessionExpired")
      return { state: { ...state, sessions: endSession(state.sessions, event) }, emit: [] };
    const next = coordinate(state.coordinator, event, transitionOf(event, ctx));
    if (next.state === state.coordinator) return { state, emit: next.emit };
    const coordinated = { ...state, coordinator: next.state };
    if (coordinated.waiting.length === 0 || inFlight(coordinated) >= inFlight(state))
      return { state: coordinated, emit: next.emit };
    const started = startWaiting(coordinated, ctx);
    return { state: started.state, emit: [...next.emit, ...started.emit] };
  };

  return {
    name: config.name ?? "dspex-pipeline",
    topics: [Topics.requests, Topics.executions, Topics.stepResults],
    table: registryTable,
    initialState:
      config.requestWindow === undefined
        ? emptyPipeline
        : { ...emptyPipeline, requests: RequestIds.window(config.requestWindow) },
    handle,
    version: 3,
    snapshotOf: pipelineSnapshot,
    restore: restorePipeline,
    tick: (state, now) => {
      const next = coordinatorTick(state.coordinator, now);
      const coordinated = next.state === state.coordinator ? state : { ...state, coordinator: next.state };
      const expired = expireSessions(coordinated.sessions, busySessions(coordinated), now, sessionTtlMs);
      return {
        state:
          expired.sessions === coordinated.sessions
            ? coordinated
            : { ...coordinated, sessions: expired.sessions },
        emit: [...next.emit, ...expired.emit],
      };
    },
    nextTickAt: (state) => {
      const deadlines = [nextDeadline(state.coordinator), nextSessionExpiry(state.sessions, sessionTtlMs)];
      const due = deadlines.filter((at): at is number => at !== undefined);
      return due.length > 0 ? Math.min(...due) : undefined;
    },
    answerUnreadable: (record, reason) =>
      record.topic === Topics.requests ? rejectUnreadable(record, reason) : [],
    pausedTopics: (state) =>
      inFlight(state) + state.waiting.length >= intakeConfig.maxInFlight ? [Topics.requests] : [],
  };
};

/** Runs the pipeline on a log until stopped. */
export const startPipeline = (log: EventLog, config: PipelineConfig = {}, runtime: RuntimeOptions = {}) =>
  runProcessor(log, pipelineProcessor(config), runtime);
