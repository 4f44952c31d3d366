import { describe, expect, it } from "vitest";
import { RequestIds } from "../../../processors/pipeline/request-ids.ts";
import { recentIds } from "../../../processors/runtime/index.ts";
import {
  completed,
  ofType,
  only,
  program,
  registered,
  requested,
  scenario,
  stage,
  types,
} from "./fixtures.ts";

const qa = program("qa", [stage("answer", { inputs: ["question"], outputs: ["answer"] })], {
  answer: "answer.answer",
});

describe("bounded dedup: request ids and input ids", () => {
  it("a request-id window holds at most its capacity, and still knows the recent ids", () => {
    let ids = RequestIds.window(1_000);
    for (let i = 0; i < 100_000; i++) ids = ids.add(`r${i}`);
    expect(ids.held).toBeLessThanOrEqual(1_000);
    expect(ids.has("r99999")).toBe(true);
    expect(ids.has("r99000")).toBe(true);
    expect(ids.has("r98999")).toBe(false);
    expect(ids.list()).toHaveLength(1_000);
    expect(ids.add("r99500")).toBe(ids);
  });

  it("an id added again after it left the window is known again, and the window stays bounded", () => {
    let ids = RequestIds.window(3);
    for (const id of ["a", "b", "c", "d", "a", "e"]) ids = ids.add(id);
    expect(ids.list()).toEqual(["d", "a", "e"]);
    expect(ids.held).toBe(3);
  });

  it("a snapshot of the window restores the same ids", () => {
    let ids = RequestIds.window(5);
    for (let i = 0; i < 12; i++) ids = ids.add(`r${i}`);
    const restored = RequestIds.of(ids.list(), 5);
    expect(restored.list()).toEqual(ids.list());
    expect(["r6", "r7", "r11", "r12"].map((id) => restored.has(id))).toEqual([false, true, true, false]);
  });

  it("the runtime's input-id window keeps its capacity and drops what it holds", () => {
    const seen = recentIds(100);
    for (let i = 0; i < 10_000; i++) seen.add(`e${i}`);
    expect(seen.size).toBe(100);
    expect([seen.has("e9999"), seen.has("e9900"), seen.has("e9899")]).toEqual([true, true, false]);
  });

  it("given a small window, a request published again while its execution is in flight still runs once", () => {
    const s = scenario({ requestWindow: 2 }, [registered(qa)]);
    const first = s.when(requested("r1", "qa", { question: "q" }));
    const step = only(first, "StepDispatched");
    // r2..r4 (rejected at once: unknown program) push r1 out of the window.
    for (const id of ["r2", "r3", "r4"]) s.when(requested(id, "nope", { question: "q" }));
    expect(s.state().requests.has("r1")).toBe(false);
    expect(s.when(requested("r1", "qa", { question: "q" }))).toEqual([]);
    expect(types(s.when(completed(step, { answer: "a" })))).toContain("ExecutionCompleted");
    expect(s.state().requests.held).toBeLessThanOrEqual(2);
  });

  it("given a small window, a finished request published again within the window is dropped", () => {
    const s = scenario({ requestWindow: 2 }, [registered(qa)]);
    const step = only(s.when(requested("r1", "qa", { question: "q" })), "StepDispatched");
    s.when(completed(step, { answer: "a" }));
    expect(s.when(requested("r1", "qa", { question: "q" }))).toEqual([]);
    // Far out of the window, a request id is taken as new (the window is what bounds the memory).
    for (const id of ["r2", "r3"]) s.when(requested(id, "nope", { question: "q" }));
    expect(ofType(s.when(requested("r1", "qa", { question: "q" })), "ExecutionStarted")).toHaveLength(1);
  });
});
