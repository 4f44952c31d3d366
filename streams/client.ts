import {
  filter,
  firstValueFrom,
  map,
  type Observable,
  type OperatorFunction,
  timeout as rxTimeout,
  take,
} from "rxjs";
import { decodeRecord, Headers, maxNestingDepth, nestsDeeperThan } from "./codec.ts";
import {
  type EventOf,
  EventValidationError,
  type ExecutionPolicy,
  ExecutionRequested,
  type JsonRecord,
  MetricRecorded,
  type ProgramDefinition,
  ProgramRegistered,
} from "./events/index.ts";
import { derivedId, newId } from "./ids.ts";
import type { EventLog, LogRecord, Position } from "./log.ts";
import { appendEvents } from "./store.ts";
import { Topics } from "./topics.ts";

/** The execution a request runs as: one per request id, so publishing a request twice runs it once. */
export const executionIdOf = (requestId: string): string => derivedId(`request/${requestId}`, "execution");

export interface RequestDraft {
  programId: string;
  inputs: JsonRecord;
  /** Default: a new UUID. Reusing one makes the publish idempotent. */
  requestId?: string;
  /** The affinity key of every step (a worker keeps the session warm). Default: the request id. */
  sessionId?: string;
  overrides?: JsonRecord;
  policy?: ExecutionPolicy;
  evaluationId?: string;
  exampleId?: string;
}

/** A metric to record: `unit` and `labels` default to empty. */
export type RecordDraft = Omit<EventOf<"MetricRecorded">["data"], "unit" | "labels"> &
  Partial<Pick<EventOf<"MetricRecorded">["data"], "unit" | "labels">>;

export type ExecutionResult =
  | EventOf<"ExecutionCompleted">
  | EventOf<"ExecutionFailed">
  | EventOf<"ExecutionRejected">;

export type ExecutionProgress =
  | EventOf<"ExecutionStarted">
  /** A DSPy stage's attempt sent to the workers: the stage has started (native stages complete at once). */
  | EventOf<"StepDispatched">
  | EventOf<"StageScheduled">
  | EventOf<"StageCompleted">
  | EventOf<"StageFailed">
  | EventOf<"StepRerouted">;

const resultTypes = new Set(["ExecutionCompleted", "ExecutionFailed", "ExecutionRejected"]);
const progressTypes = new Set([
  "ExecutionStarted",
  "StepDispatched",
  "StageScheduled",
  "StageCompleted",
  "StageFailed",
  "StepRerouted",
]);

/**
 * Decodes the records of the given types stored under `key` (types read from the header first, so others
 * are never parsed) that `belongs` to what the caller follows.
 */
const eventsOf =
  <E>(
    types: ReadonlySet<string>,
    key: string,
    belongs: (event: E) => boolean,
  ): OperatorFunction<LogRecord, E> =>
  (records) =>
    records.pipe(
      filter((r) => r.key === key && types.has(r.headers[Headers.type] ?? "")),
      map((r) => decodeRecord(r)),
      filter((d) => d.ok),
      map((d) => (d as { ok: true; event: unknown }).event as E),
      filter(belongs),
    );

/**
 * Where a subscription starts: `end` (the default) sees what is appended after it subscribed, `beginning`
 * everything on the log, `{ time }` what the log stored at or after that time, `{ positions }` each listed
 * partition from its offset (the others from their beginning): the client's `checkpoint()`, or one past
 * the records you handled, resumes exactly where you were.
 */
export type StartAt = "beginning" | "end" | { time: Date | number } | { positions: readonly Position[] };

export interface ClientOptions {
  from?: StartAt;
}

const partitionKey = (topic: string, partition: number) => `${topic}/${partition}`;

/** The log's records of `topics` from where `from` says. */
const tailFrom = (log: EventLog, topics: string[], from: StartAt = "end"): Observable<LogRecord> => {
  if (typeof from === "string") return log.tail(topics, { from });
  if ("positions" in from) {
    const starts = new Map(from.positions.map((p) => [partitionKey(p.topic, p.partition), p.offset]));
    return log
      .tail(topics, { from: "beginning" })
      .pipe(filter((r) => r.offset >= (starts.get(partitionKey(r.topic, r.partition)) ?? 0)));
  }
  const since = typeof from.time === "number" ? from.time : from.time.getTime();
  if (!Number.isFinite(since)) throw new TypeError("from.time must be a valid date or epoch milliseconds");
  return log.tail(topics, { from: "beginning" }).pipe(filter((r) => r.timestamp >= since));
};

/** Data from outside nested too deeply to validate (the schemas recurse per level) is refused first. */
const checkNesting = (type: string, data: unknown): void => {
  // The envelope is the first level, the data the second.
  if (nestsDeeperThan(data, maxNestingDepth - 1))
    throw new EventValidationError(type, `it nests arrays and objects deeper than ${maxNestingDepth} levels`);
};

/** Publishes requests and programs, and follows results, progress and variables on any log backend. */
export const createClient = (log: EventLog) => {
  const publish = async (draft: RequestDraft) => {
    checkNesting("ExecutionRequested", draft);
    const requestId = draft.requestId ?? newId();
    const request = ExecutionRequested.create({
      stream: `request-${requestId}`,
      key: draft.sessionId ?? requestId,
      data: {
        requestId,
        programId: draft.programId,
        inputs: draft.inputs,
        sessionId: draft.sessionId,
        overrides: draft.overrides ?? {},
        policy: draft.policy ?? {},
        evaluationId: draft.evaluationId,
        exampleId: draft.exampleId,
      },
    });
    await appendEvents(log, [request]);
    return { requestId, executionId: executionIdOf(requestId), event: request };
  };

  /** The request's result (completed, failed or rejected); completes after it. */
  const results$ = (requestId: string, options: ClientOptions = {}): Observable<ExecutionResult> =>
    tailFrom(log, [Topics.results], options.from).pipe(
      eventsOf<ExecutionResult>(resultTypes, requestId, (e) => e.data.requestId === requestId),
      take(1),
    );

  /**
   * Progress of the request's execution as it happens: started, each stage's attempts dispatched (a DSPy
   * stage started) or scheduled (a retry), completed or failed, rerouted.
   * An execution's events are stored under its session key: give the session id if the request had one.
   */
  const progress$ = (
    requestId: string,
    options: ClientOptions & { sessionId?: string } = {},
  ): Observable<ExecutionProgress> => {
    const executionId = executionIdOf(requestId);
    return tailFrom(log, [Topics.executions, Topics.steps], options.from).pipe(
      eventsOf<ExecutionProgress>(
        progressTypes,
        options.sessionId ?? requestId,
        (e) => e.data.executionId === executionId,
      ),
    );
  };

  /** Publishes a request and resolves with its result; rejects after `timeoutMs` without one. */
  const execute = async (
    draft: RequestDraft,
    options: { timeoutMs?: number } = {},
  ): Promise<ExecutionResult> => {
    const requestId = draft.requestId ?? newId();
    // Subscribed before publishing, from the end: nothing is missed and history isn't scanned.
    const result = firstValueFrom(
      results$(requestId, { from: "end" }).pipe(rxTimeout({ first: options.timeoutMs ?? 300_000 })),
    );
    result.catch(() => undefined);
    await publish({ ...draft, requestId });
    return result;
  };

  const variables$ = (options: ClientOptions = {}): Observable<EventOf<"VariableChanged">> =>
    tailFrom(log, [Topics.variables], options.from).pipe(
      filter((r) => r.headers[Headers.type] === "VariableChanged"),
      map((r) => decodeRecord(r)),
      filter((d) => d.ok),
      map((d) => (d as { ok: true; event: EventOf<"VariableChanged"> }).event),
    );

  /** Registers (or re-registers) a program, so the pipeline and workers learn it from the log. */
  const register = async (program: ProgramDefinition) => {
    checkNesting("ProgramRegistered", program);
    const event = ProgramRegistered.create({
      stream: `program-${program.programId}`,
      key: program.programId,
      data: program,
    });
    await appendEvents(log, [event]);
    return event;
  };

  /**
   * Where the topics end now: a subscription `from: { positions }` these sees exactly what is appended after
   * this call, even one made after a restart.
   */
  const checkpoint = async (
    topics: readonly string[] = [Topics.executions, Topics.steps, Topics.results, Topics.variables],
  ): Promise<Position[]> =>
    (await Promise.all(topics.map(async (topic) => ({ topic, ends: await log.endOffsets(topic) })))).flatMap(
      ({ topic, ends }) => [...ends].map(([partition, offset]) => ({ topic, partition, offset })),
    );

  /**
   * Records a metric of the program, e.g. the quality or feedback of one execution (`executionId`): the
   * metrics and sessions read models aggregate it, and the re-optimizer can watch it.
   */
  const record = async (metric: RecordDraft) => {
    const event = MetricRecorded.create({
      stream: `metrics-${metric.programId}`,
      key: metric.programId,
      data: { unit: "", labels: {}, ...metric },
    });
    await appendEvents(log, [event]);
    return event;
  };

  return { publish, results$, progress$, execute, variables$, register, checkpoint, record };
};

export type Client = ReturnType<typeof createClient>;
