import { describe, expect, it } from "vitest";
import { assignPartitions } from "../../../streams/embedded/assignment.ts";

const partitions = (n: number) => Array.from({ length: n }, (_, partition) => ({ topic: "t", partition }));
const counts = (assignment: Map<string, string>) => {
  const result: Record<string, number> = {};
  for (const member of assignment.values()) result[member] = (result[member] ?? 0) + 1;
  return result;
};

describe("partition assignment", () => {
  it("gives everything to a lone member", () => {
    expect(counts(assignPartitions(partitions(4), ["a"], new Map()))).toEqual({ a: 4 });
  });

  it("balances partitions across members", () => {
    expect(counts(assignPartitions(partitions(5), ["b", "a"], new Map()))).toEqual({ a: 3, b: 2 });
  });

  it("keeps current owners up to their share when a member joins", () => {
    const before = assignPartitions(partitions(4), ["a"], new Map());
    const after = assignPartitions(partitions(4), ["a", "b"], before);
    expect(counts(after)).toEqual({ a: 2, b: 2 });
    const kept = [...after].filter(([tp, member]) => before.get(tp) === member);
    expect(kept).toHaveLength(2);
  });

  it("hands a departed member's partitions to the others", () => {
    const before = assignPartitions(partitions(4), ["a", "b"], new Map());
    const after = assignPartitions(partitions(4), ["a"], before);
    expect(counts(after)).toEqual({ a: 4 });
  });

  it("assigns nothing without members", () => {
    expect(assignPartitions(partitions(3), [], new Map()).size).toBe(0);
  });
});
