/**
 * Sessions end to end: requests that name a session keep it active; once it has had no request for the
 * configured time to live, the pipeline (the task owning the session's partition) appends one
 * SessionExpired; `dspex sessions` lists it as expired; a new request revives it. Embedded log, the public
 * entry point, the CLI in a process of its own.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type DspexEvent, native, program } from "../../index.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { temporaryFolder } from "../support/backends.ts";
import { dspex as dspexCommand } from "../support/cli.ts";
import { dspexHere } from "../support/dspex-here.ts";
import { eventually, pipelineInputs, untilCaughtUp } from "../support/waits.ts";

// Long enough that two requests in a row never fall on either side of an expiry, even on a loaded machine.
const ttlMs = 5_000;

describe("sessions (embedded log)", () => {
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it("an idle session expires once, is listed as expired, and a new request revives it", async () => {
    const folder = temporaryFolder("dspex-sessions-");
    const configPath = join(folder, "dspex.config.json");
    writeFileSync(
      configPath,
      JSON.stringify({ embedded: { path: join(folder, "log.db") }, sessions: { ttlMs } }),
    );
    const { dspex, stop } = await dspexHere({
      log: { config: configPath },
      processors: ["pipeline"],
      workers: 0,
    });
    stops.push(stop);
    const echo = await dspex.register(
      program("session-echo")
        .input("text: str")
        .stage("shout", native.transform("text -> loud: str", { fn: "uppercase" })),
    );

    const run = (sessionId: string, text: string) =>
      dspex.execute({ program: echo, inputs: { text }, sessionId });
    const executions: string[] = [];
    for (const [sessionId, text] of [
      ["alice", "hi"],
      ["alice", "again"],
      ["bob", "hello"],
    ] as const) {
      const result = await run(sessionId, text);
      if (result.type !== "ExecutionCompleted") throw new Error(`not completed: ${JSON.stringify(result)}`);
      executions.push(result.data.executionId);
    }
    // A request without a session is no session; feedback recorded for an execution counts in its session.
    expect((await dspex.execute({ program: echo, inputs: { text: "alone" } })).type).toBe(
      "ExecutionCompleted",
    );
    await dspex.record({ programId: echo.programId, executionId: executions[0]!, name: "quality", value: 1 });
    await dspex.record({
      programId: echo.programId,
      executionId: executions[1]!,
      name: "quality",
      value: 0.5,
    });

    const expiries = async () =>
      (await readEvents(dspex.log, Topics.executions)).flatMap((r) =>
        "event" in r && r.event.type === "SessionExpired"
          ? [r.event as Extract<DspexEvent, { type: "SessionExpired" }>]
          : [],
      );
    await eventually(
      async () => ((await expiries()).length >= 2 ? true : undefined),
      60_000,
      "alice's and bob's expiry",
    );
    await untilCaughtUp(dspex.log, pipelineInputs);
    const expired = await expiries();
    expect(expired.map((e) => e.data.sessionId).sort()).toEqual(["alice", "bob"]);
    expect(expired.every((e) => e.data.ttlMs === ttlMs)).toBe(true);

    const listed = dspexCommand(["sessions", "--config", configPath, "--json"], process.env);
    expect(await listed.exited).toBe(0);
    const sessions = JSON.parse(listed.lines.join("\n")) as {
      sessionId: string;
      started: number;
      expiredAt?: string;
      recorded: Record<string, { count: number; sum: number }>;
    }[];
    expect(sessions.map((s) => [s.sessionId, s.started, typeof s.expiredAt]).sort()).toEqual([
      ["alice", 2, "string"],
      ["bob", 1, "string"],
    ]);
    expect(sessions.find((s) => s.sessionId === "alice")?.recorded.quality).toMatchObject({
      count: 2,
      sum: 1.5,
    });
    const table = dspexCommand(["sessions", "--config", configPath], process.env);
    expect(await table.exited).toBe(0);
    expect(table.lines.join("\n")).toMatch(/quality 0\.750 \(mean of 2\)/);

    expect((await run("alice", "back")).type).toBe("ExecutionCompleted");
    const state = await dspex.replay();
    const alice = [...state.sessions.values()].find((s) => s.kind === "session" && s.sessionId === "alice");
    expect(alice).toMatchObject({ started: 3 });
    expect(alice).not.toHaveProperty("expiredAt");
  });
});
