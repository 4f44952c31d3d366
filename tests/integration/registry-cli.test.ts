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

  it("vars set changes a variable through the registry processor, and says why when it refuses", async () => {
    const path = join(temporaryFolder("dspex-vars-set-"), "log.db");
    const log = await openLog({ backend: "embedded", path });
    await registerProgram(log, qa);
    await log.close();
    const lines = printed();
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => void errors.push(args.join(" ")));
    const set = (...args: string[]) =>
      varsCommand.parseAsync(["set", "qa.answer.temperature", ...args, "--log", path], { from: "user" });

    await set("0.3", "--reason", "cooler");
    expect(lines).toEqual(["qa.answer.temperature  v1 = 0.3 (was 0)"]);
    await set("0.3");
    expect(lines[1]).toBe("qa.answer.temperature  v1 = 0.3 already; nothing changed");
    await set("9", "--actor", "ops");
    expect(errors).toEqual(["qa.answer.temperature: rejected: temperature must be between 0 and 2 (got 9)"]);
    expect(process.exitCode).toBe(1);
    process.exitCode = 0;
    await expect(
      varsCommand.parseAsync(["set", "qa.nope", "1", "--log", path], { from: "user" }),
    ).rejects.toThrow(/no variable qa.nope in .*`dspex vars` lists them/);

    const reopened = await openLog({ backend: "embedded", path });
    const state = (await readRegistry(reopened)).variables.get("qa.answer.temperature")!;
    await reopened.close();
    expect(state).toMatchObject({ value: 0.3, version: 1, rejections: 1 });
    expect(state.history).toMatchObject([{ version: 1, value: 0.3, actor: "cli", reason: "cooler" }]);
    expect(state.lastRejection).toMatchObject({ value: 9, actor: "ops" });
  });

  it("vars set refuses a value that would break the program's constraints, and issues nothing", async () => {
    const path = join(temporaryFolder("dspex-vars-constraint-"), "log.db");
    const log = await openLog({ backend: "embedded", path });
    const cool = program("cool")
      .input("question: str")
      .variable("model", v.model(["big", "small"]))
      .stage("answer", dspy.predict("question -> answer"), { variables: { temperature: v.temperature(0.9) } })
      .constraint("cool small model", {
        when: { model: ["small"] },
        require: { variable: "answer.temperature", op: "<=", than: 0.5 },
      })
      .build();
    await registerProgram(log, cool);
    await log.close();
    printed();
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => void errors.push(args.join(" ")));
    const set = (variable: string, value: string) =>
      varsCommand.parseAsync(["set", variable, value, "--log", path], { from: "user" });

    await set("cool.model", '"small"');
    expect(errors).toEqual([
      "cool.model: not set: cool's constraints would break: cool small model: answer.temperature (0.9) must be <= 0.5. Change the other variable first.",
    ]);
    expect(process.exitCode).toBe(1);
    process.exitCode = 0;
    await set("cool.answer.temperature", "0.3");
    await set("cool.model", '"small"');
    expect(errors).toHaveLength(1);

    const reopened = await openLog({ backend: "embedded", path });
    const { variables } = await readRegistry(reopened);
    await reopened.close();
    expect(variables.get("cool.model")).toMatchObject({ value: "small", version: 1, rejections: 0 });
    expect(variables.get("cool.answer.temperature")).toMatchObject({ value: 0.3, version: 1 });
  });
});
