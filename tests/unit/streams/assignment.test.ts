import { describe, expect, it } from "vitest";
import { assignmentChange, assignTasks, partitionsOfTasks, taskCount } from "../../../streams/assignment.ts";

const counts = (assignment: Map<number, string>) => {
  const result: Record<string, number> = {};
  for (const member of assignment.values()) result[member] = (result[member] ?? 0) + 1;
  return result;
};

describe("co-partitioned task assignment", () => {
  it("gives everything to a lone member", () => {
    expect(counts(assignTasks(4, ["a"], new Map()))).toEqual({ a: 4 });
  });

  it("balances tasks across members", () => {
    expect(counts(assignTasks(5, ["b", "a"], new Map()))).toEqual({ a: 3, b: 2 });
  });

  it("keeps current owners up to their share when a member joins", () => {
    const before = assignTasks(4, ["a"], new Map());
    const after = assignTasks(4, ["a", "b"], before);
    expect(counts(after)).toEqual({ a: 2, b: 2 });
    expect([...after].filter(([task, member]) => before.get(task) === member)).toHaveLength(2);
  });

  it("hands a departed member's tasks to the others", () => {
    const before = assignTasks(4, ["a", "b"], new Map());
    expect(counts(assignTasks(4, ["a"], before))).toEqual({ a: 4 });
  });

  it("assigns nothing without members", () => {
    expect(assignTasks(3, [], new Map()).size).toBe(0);
  });

  it("makes task p partition p of every topic that has one", () => {
    const topics = [
      { topic: "requests", partitions: 3 },
      { topic: "results", partitions: 2 },
    ];
    expect(taskCount(topics.map((t) => t.partitions))).toBe(3);
    expect(partitionsOfTasks([2, 1], topics)).toEqual([
      { topic: "requests", partition: 1 },
      { topic: "requests", partition: 2 },
      { topic: "results", partition: 1 },
    ]);
  });

  it("tells what an assignment gained and lost", () => {
    const tp = (topic: string, partition: number) => ({ topic, partition });
    expect(assignmentChange([tp("a", 0), tp("a", 1)], [tp("a", 1), tp("a", 2)])).toEqual({
      assigned: [tp("a", 2)],
      revoked: [tp("a", 0)],
    });
  });
});
