/** Sessions in the pipeline: a session idle for its TTL is expired by an event, in the task that owns it. */
import { describe, expect, it } from "vitest";
import {
  completed,
  ofType,
  only,
  program,
  registered,
  requested,
  scenario,
  stage,
  T0,
  types,
} from "./fixtures.ts";

const qa = program("qa", [stage("answer", { inputs: ["question"], outputs: ["answer"] })], {
  answer: "answer.answer",
});
const ttlMs = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** A request of session `sessionId` made at `at`. */
const sessionRequest = (requestId: string, sessionId: string | undefined, at: number) => ({
  ...requested(requestId, "qa", { question: "q" }, sessionId ? { sessionId } : {}),
  occurredAt: iso(at),
});

describe("sessions in the pipeline", () => {
  it("given a finished request of a session, when its TTL passes idle, then SessionExpired; read back, it ends", () => {
    const s = scenario({ sessionTtlMs: ttlMs }, [registered(qa)]);
    const step = only(s.when(sessionRequest("r1", "s1", T0), T0), "StepDispatched");
    s.when(completed(step, { answer: "a" }), T0 + 10);
    expect(s.nextTickAt()).toBe(T0 + ttlMs);
    expect(ofType(s.tick(T0 + ttlMs - 1), "SessionExpired")).toEqual([]);
    const expired = only(s.tick(T0 + ttlMs), "SessionExpired");
    expect(expired.key).toBe("s1");
    expect(expired.data).toEqual({ sessionId: "s1", lastActivityAt: iso(T0), ttlMs });
    expect(s.tick(T0 + ttlMs + 1)).toEqual([]);
    s.when(expired, T0 + ttlMs + 2);
    expect(s.state().sessions.size).toBe(0);
    expect(s.nextTickAt()).toBeUndefined();
  });

  it("does not expire a session while one of its executions runs", () => {
    const s = scenario({ sessionTtlMs: ttlMs }, [registered(qa)]);
    s.when(sessionRequest("r1", "s1", T0), T0);
    expect(ofType(s.tick(T0 + 2 * ttlMs), "SessionExpired")).toEqual([]);
  });

  it("keeps a session a request made active again before its expiry was read back", () => {
    const s = scenario({ sessionTtlMs: ttlMs }, [registered(qa)]);
    const first = only(s.when(sessionRequest("r1", "s1", T0), T0), "StepDispatched");
    s.when(completed(first, { answer: "a" }), T0 + 10);
    const expired = only(s.tick(T0 + ttlMs), "SessionExpired");
    const second = only(s.when(sessionRequest("r2", "s1", T0 + ttlMs + 5), T0 + ttlMs + 5), "StepDispatched");
    s.when(expired, T0 + ttlMs + 6);
    expect(s.state().sessions.get("s1")?.lastActivity).toBe(T0 + ttlMs + 5);
    s.when(completed(second, { answer: "b" }), T0 + ttlMs + 7);
    const again = only(s.tick(T0 + 2 * ttlMs + 5), "SessionExpired");
    expect(again.data.lastActivityAt).toBe(iso(T0 + ttlMs + 5));
    expect(again.id).not.toBe(expired.id);
  });

  it("a task rebuilt from the log elsewhere expires the session under the same id, and not once it is read back", () => {
    const request = sessionRequest("r1", "s1", T0);
    const first = scenario({ sessionTtlMs: ttlMs }, [registered(qa)]);
    const step = only(first.when(request, T0), "StepDispatched");
    const answer = completed(step, { answer: "a" });
    first.when(answer, T0 + 10);
    const expired = only(first.tick(T0 + ttlMs), "SessionExpired");
    // Another instance takes the partition over and folds the same records (its soft marks are gone).
    const rebuilt = scenario({ sessionTtlMs: ttlMs }, [registered(qa)]);
    rebuilt.when(request, T0 + ttlMs + 1);
    rebuilt.when(answer, T0 + ttlMs + 1);
    expect(only(rebuilt.tick(T0 + ttlMs + 2), "SessionExpired").id).toBe(expired.id);
    const caughtUp = scenario({ sessionTtlMs: ttlMs }, [registered(qa)]);
    for (const record of [request, answer, expired]) caughtUp.when(record, T0 + ttlMs + 1);
    expect(ofType(caughtUp.tick(T0 + 2 * ttlMs), "SessionExpired")).toEqual([]);
  });

  it("tracks no session for a request that names none, and none when the TTL is 0", () => {
    const anonymous = scenario({ sessionTtlMs: ttlMs }, [registered(qa)]);
    anonymous.when(sessionRequest("r1", undefined, T0), T0);
    expect(anonymous.state().sessions.size).toBe(0);
    const forever = scenario({ sessionTtlMs: 0 }, [registered(qa)]);
    const step = only(forever.when(sessionRequest("r1", "s1", T0), T0), "StepDispatched");
    forever.when(completed(step, { answer: "a" }), T0 + 10);
    expect(types(forever.tick(T0 + 100 * ttlMs))).not.toContain("SessionExpired");
  });
});
