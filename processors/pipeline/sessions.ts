import type { Envelope } from "../../streams/envelope.ts";
import { type EventOf, SessionExpired } from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import type { Request } from "./intake.ts";

/**
 * Sessions, as the pipeline task that owns them keeps them: a request's `sessionId` is its key, so one task
 * sees every request of a session. A session idle for its time to live is expired by an event.
 */
export interface SessionActivity {
  /** Its latest request's time (the request's `occurredAt`: a rebuild reaches the same value). */
  lastActivity: number;
  /** Soft mark (not replayed): the tick already emitted this session's expiry. */
  expirySent?: boolean;
}

export type Sessions = ReadonlyMap<string, SessionActivity>;

/** A session's default time to live without a request. */
export const defaultSessionTtlMs = 30 * 60_000;

/** A request that names its session makes the session active as of the request's time. */
export const touchSession = (sessions: Sessions, request: Request): Sessions => {
  const { sessionId } = request.data;
  if (sessionId === undefined) return sessions;
  const at = Date.parse(request.occurredAt);
  const known = sessions.get(sessionId);
  if (known && known.lastActivity >= at) return sessions;
  return new Map(sessions).set(sessionId, { lastActivity: at });
};

/**
 * The sessions idle for `ttlMs` at `now` and not `busy`: a `SessionExpired` each, its id derived from the
 * activity it ends (a task rebuilt elsewhere writes the same one).
 */
export const expireSessions = (
  sessions: Sessions,
  busy: ReadonlySet<string>,
  now: number,
  ttlMs: number,
): { sessions: Sessions; emit: Envelope[] } => {
  if (ttlMs <= 0 || sessions.size === 0) return { sessions, emit: [] };
  const emit: Envelope[] = [];
  let marked: Map<string, SessionActivity> | undefined;
  for (const [sessionId, activity] of sessions) {
    if (activity.expirySent || busy.has(sessionId) || now < activity.lastActivity + ttlMs) continue;
    const lastActivityAt = new Date(activity.lastActivity).toISOString();
    emit.push(
      SessionExpired.create({
        id: derivedId(`session/${sessionId}`, `expired/${lastActivityAt}`),
        stream: `session-${sessionId}`,
        key: sessionId,
        occurredAt: new Date(now).toISOString(),
        data: { sessionId, lastActivityAt, ttlMs },
      }),
    );
    marked ??= new Map(sessions);
    marked.set(sessionId, { ...activity, expirySent: true });
  }
  return { sessions: marked ?? sessions, emit };
};

/** A session's expiry read back ends it, unless a request made it active again meanwhile. */
export const endSession = (sessions: Sessions, event: EventOf<"SessionExpired">): Sessions => {
  const known = sessions.get(event.data.sessionId);
  if (!known || known.lastActivity > Date.parse(event.data.lastActivityAt)) return sessions;
  const rest = new Map(sessions);
  rest.delete(event.data.sessionId);
  return rest;
};

/** When the next session comes due, if one may. */
export const nextSessionExpiry = (sessions: Sessions, ttlMs: number): number | undefined => {
  if (ttlMs <= 0) return undefined;
  let next: number | undefined;
  for (const activity of sessions.values())
    if (!activity.expirySent)
      next = Math.min(next ?? Number.POSITIVE_INFINITY, activity.lastActivity + ttlMs);
  return next;
};
