import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { lagCommand } from "../../cli/commands/lag.ts";
import { publishCommand } from "../../cli/commands/publish.ts";
import { statusCommand } from "../../cli/commands/status.ts";
import { tailCommand } from "../../cli/commands/tail.ts";
import { startPipeline } from "../../processors/pipeline/pipeline.ts";
import { createClient } from "../../streams/client.ts";
import { groupLag } from "../../streams/lag.ts";
import { openLog } from "../../streams/open.ts";
import { temporaryFolder } from "../support/backends.ts";
import { startTestExecutor } from "../support/test-executor.ts";
import { program, stage } from "../unit/processors/fixtures.ts";

const qa = program("qa", [stage("answer", { inputs: ["question"], outputs: ["answer"] })], {
  answer: "answer.answer",
});

describe("dspex publish, status and tail", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  const printed = () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(args.join(" ")));
    return lines;
  };

  it("publishes and waits for the result, then shows the execution's status, and tails the topic", async () => {
    const path = join(temporaryFolder("dspex-cli-"), "log.db");
    const log = await openLog({ backend: "embedded", path });
    cleanups.push(() => log.close());
    await createClient(log).register(qa);
    const pipeline = startPipeline(log);
    const executor = startTestExecutor(log);
    cleanups.push(
      () => pipeline.stop(),
      () => executor.stop(),
    );
    await pipeline.ready;

    const lines = printed();
    await publishCommand.parseAsync(
      ["qa", "-i", "question=hi", "--request-id", "r-cli", "--wait", "--log", path],
      {
        from: "user",
      },
    );
    const result = JSON.parse(lines.join("\n"));
    expect(result).toMatchObject({
      type: "ExecutionCompleted",
      requestId: "r-cli",
      outputs: { answer: "answer from answer" },
    });

    lines.length = 0;
    await statusCommand.parseAsync(["r-cli", "--log", path], { from: "user" });
    expect(lines[0]).toMatch(/^execution .* \(request r-cli, program qa\): completed in \d+ ms$/);
    expect(lines[1]).toMatch(/^ {2}answer +completed +attempts 1/);

    lines.length = 0;
    await tailCommand.parseAsync(["results", "--from", "beginning", "-n", "1", "--log", path], {
      from: "user",
    });
    expect(lines[0]).toMatch(/^dspex\.results\[0\]@0 {2}ExecutionCompleted {2}key=r-cli/);
  });

  it("dspex lag: requests waiting on the log behind a full pipeline, the oldest one's age, the members", async () => {
    const path = join(temporaryFolder("dspex-cli-"), "log.db");
    const log = await openLog({ backend: "embedded", path });
    cleanups.push(() => log.close());
    const client = createClient(log);
    await client.register(qa);
    const pipeline = startPipeline(log, { intake: { maxInFlight: 1 } });
    const executor = startTestExecutor(log, { latencyMs: 60_000 });
    cleanups.push(
      () => pipeline.stop(),
      () => executor.stop(),
    );
    await pipeline.ready;
    await client.publish({ programId: "qa", inputs: { question: "first" } });
    await expect
      .poll(() => pipeline.states().get(0)?.coordinator.executions.size, { timeout: 10_000 })
      .toBe(1);
    // The pipeline is full: the next four wait on the log.
    for (let i = 0; i < 4; i++) await client.publish({ programId: "qa", inputs: { question: `q${i}` } });
    await expect
      .poll(async () => (await groupLag(log, "dspex-pipeline", ["dspex.requests"]))[0]?.lag, {
        timeout: 10_000,
      })
      .toBe(4);

    const lines = printed();
    await lagCommand.parseAsync(["--json", "--log", path], { from: "user" });
    const lag = JSON.parse(lines.join("\n"));
    const pipelineLag = lag.groups.find((g: { group: string }) => g.group === "dspex-pipeline");
    expect(pipelineLag).toMatchObject({ members: 1, topics: { "dspex.requests": 4 } });
    expect(lag.oldestRequestWaitingMs).toBeGreaterThanOrEqual(0);
    expect(lag.oldestRequestWaitingMs).toBeLessThan(60_000);
  });
});
