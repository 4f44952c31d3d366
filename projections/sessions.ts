import type { DspexEvent } from "../streams/events/index.ts";
import { type RecordedMetrics, withRecorded } from "./metrics.ts";
import type { Projection } from "./projection.ts";

export interface SessionView {
  kind: "session";
  sessionId: string;
  /** The latest execution ids, newest last (at most `sessionHistoryLimit`). */
  executions: string[];
  started: number;
  completed: number;
  failed: number;
  /** Sum of the durations of finished executions. */
  totalDurationMs: number;
  firstActivityAt: string;
  lastActivityAt: string;
  /** When the pipeline expired it for idleness (a later execution revives it). */
  expiredAt?: string;
  /** What its executions measured: every MetricRecorded for one of them (latencies, and quality or feedback you record). */
  recorded: RecordedMetrics;
}

/** Which session an execution belongs to: results don't carry the session id. */
export interface ExecutionLink {
  kind: "link";
  sessionId: string;
}

export type SessionEntity = SessionView | ExecutionLink;

export const sessionHistoryLimit = 50;

const sessionKey = (id: string) => `session/${id}`;
const linkKey = (executionId: string) => `execution/${executionId}`;

const later = (a: string, b: string) => (Date.parse(a) >= Date.parse(b) ? a : b);

const touch = (view: SessionView, at: string): SessionView => ({
  ...view,
  lastActivityAt: later(view.lastActivityAt, at),
});

/** A request without a `sessionId` runs under its own request id: it is not a session. */
const isAnonymous = (started: { sessionId: string; requestId: string }) =>
  started.sessionId === started.requestId;

/** Per session: its executions, counts, average duration, what they measured, last activity (for the idle TTL). */
export const sessionsProjection: Projection<SessionEntity> = {
  name: "sessions",
  version: 3,
  types: ["ExecutionStarted", "ExecutionCompleted", "ExecutionFailed", "MetricRecorded", "SessionExpired"],
  keysOf: (event: DspexEvent, get) => {
    if (event.type === "SessionExpired") return [sessionKey(event.data.sessionId)];
    if (event.type === "ExecutionStarted")
      return isAnonymous(event.data)
        ? []
        : [linkKey(event.data.executionId), sessionKey(event.data.sessionId)];
    const executionId =
      event.type === "ExecutionCompleted" ||
      event.type === "ExecutionFailed" ||
      event.type === "MetricRecorded"
        ? event.data.executionId
        : undefined;
    const link = executionId === undefined ? undefined : get(linkKey(executionId));
    return link?.kind === "link" ? [sessionKey(link.sessionId)] : [];
  },
  evolve: (entity, event, key) => {
    if (event.type === "ExecutionStarted") {
      const { sessionId, executionId } = event.data;
      if (key.startsWith("execution/")) return entity ?? { kind: "link", sessionId };
      const view: SessionView =
        entity?.kind === "session"
          ? entity
          : {
              kind: "session",
              sessionId,
              executions: [],
              started: 0,
              completed: 0,
              failed: 0,
              totalDurationMs: 0,
              firstActivityAt: event.occurredAt,
              lastActivityAt: event.occurredAt,
              recorded: {},
            };
      const executions = [
        ...view.executions.slice(view.executions.length >= sessionHistoryLimit ? 1 : 0),
        executionId,
      ];
      const { expiredAt: _, ...alive } = view;
      return touch({ ...alive, executions, started: view.started + 1 }, event.occurredAt);
    }
    if (event.type === "SessionExpired" && entity?.kind === "session")
      return { ...entity, expiredAt: event.occurredAt };
    if (event.type === "MetricRecorded" && entity?.kind === "session")
      return { ...entity, recorded: withRecorded(entity.recorded, event.data.name, event.data.value) };
    if (
      (event.type === "ExecutionCompleted" || event.type === "ExecutionFailed") &&
      entity?.kind === "session"
    ) {
      const done =
        event.type === "ExecutionCompleted"
          ? { completed: entity.completed + 1 }
          : { failed: entity.failed + 1 };
      return touch(
        { ...entity, ...done, totalDurationMs: entity.totalDurationMs + event.data.durationMs },
        event.occurredAt,
      );
    }
    return entity;
  },
};

export const sessionsOf = (state: ReadonlyMap<string, SessionEntity>): SessionView[] =>
  [...state.values()].filter((e): e is SessionView => e.kind === "session");

export const averageDurationMs = (session: SessionView): number => {
  const finished = session.completed + session.failed;
  return finished === 0 ? 0 : session.totalDurationMs / finished;
};
