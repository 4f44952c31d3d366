import { describe, expect, it } from "vitest";
import { mergeByTime } from "../../../streams/time-order.ts";

const item = (list: string, position: number, at: number) => ({ id: `${list}${position}`, at });
const ids = (items: readonly { id: string }[]) => items.map((i) => i.id);

describe("mergeByTime", () => {
  it("takes the list whose next item is oldest, the earlier list on a tie", () => {
    const a = [item("a", 0, 10), item("a", 1, 30)];
    const b = [item("b", 0, 10), item("b", 1, 20)];
    expect(ids(mergeByTime([a, b], (i) => i.at))).toEqual(["a0", "b0", "b1", "a1"]);
  });

  it("never reorders a list: an item older than the one before it (a producer's retried record) stays after it", () => {
    const steps = [item("s", 0, 100), item("s", 1, 50), item("s", 2, 120)];
    const executions = [item("e", 0, 60), item("e", 1, 110)];
    const merged = ids(mergeByTime([steps, executions], (i) => i.at));
    expect(merged).toEqual(["e0", "s0", "s1", "e1", "s2"]);
    // Sorting by time would have folded s1 before s0.
    expect(merged.indexOf("s1")).toBeGreaterThan(merged.indexOf("s0"));
  });

  it("keeps every item once, whatever the lists", () => {
    const lists = [[item("a", 0, 5), item("a", 1, 1)], [], [item("c", 0, 3)]];
    const merged = mergeByTime(lists, (i) => i.at);
    expect(merged).toHaveLength(3);
    expect(new Set(ids(merged))).toEqual(new Set(["a0", "a1", "c0"]));
  });
});
