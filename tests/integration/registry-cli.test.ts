import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { replayCommand } from "../../cli/commands/replay.ts";
import { varsCommand } from "../../cli/commands/vars.ts";
import { dspy, program, v } from "../../programs/index.ts";
import { readRegistry, registerProgram } from "../../programs/register.ts";
import { decide } from "../../programs/registry.ts";
import { projectionRunner, stateHash, variablesProjection } from "../../projections/index.ts";
import { openLog } from "../../streams/open.ts";
import { appendEvents } from "../../streams/store.ts";
import { temporaryFolder } from "../support/backends.ts";

const qa = program("qa")
  .input("question: str")
  .stage("answer", dspy.predict("question -> answer"), { variables: { temperature: v.temperature(0) } })
  .build();

const printed = () => {
  const lines: string[] = [];
  vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(args.join(" ")));
  return lines;
};

describe("dspex vars and replay", () => {
  afterEach(() => vi.restoreAllMocks());

  it("show the registry with its history, and the replayed state's hash", async () => {
    const path = join(temporaryFolder("dspex-vars-"), "log.db");
    const log = await openLog({ backend: "embedded", path });
    await registerProgram(log, qa);
    await registerProgram(log, qa);
    const { variables } = await readRegistry(log);
    expect([...variables.keys()]).toEqual(["qa.answer.temperature"]);
    const set = {
      type: "set" as const,
      variableId: "qa.answer.temperature",
      actor: "tester",
      reason: "warmer",
    };
    await appendEvents(log, decide(variables.get("qa.answer.temperature"), { ...set, value: 0.7 }));
    await appendEvents(log, decide(variables.get("qa.answer.temperature"), { ...set, value: 9 }));
    const runner = projectionRunner({ name: "expected", log, projections: [variablesProjection] });
    await runner.rebuild();
    const expectedHash = stateHash([...runner.state("variables")]);
    await log.close();

    const lines = printed();
    await varsCommand.parseAsync(["--log", path], { from: "user" });
    expect(lines[0]).toBe("qa.answer.temperature  v1 = 0.7");
    expect(lines[1]).toMatch(/^ {4}v1 by tester: warmer$/);

    lines.length = 0;
    await replayCommand.parseAsync(["--log", path], { from: "user" });
    expect(lines.find((l) => l.startsWith("variables"))).toContain(expectedHash);
    expect(lines.at(-1)).toMatch(/^replayed \d+ events in/);
  });
});
