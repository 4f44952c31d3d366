import { describe, expect, it } from "vitest";
import { RequestIds } from "../../../processors/pipeline/request-ids.ts";

describe("RequestIds (the pipeline's set of requests taken in)", () => {
  it("adds and finds ids without changing the versions it came from", () => {
    const a = RequestIds.empty.add("r1");
    const b = a.add("r2");
    expect([a.has("r1"), a.has("r2"), b.has("r1"), b.has("r2")]).toEqual([true, false, true, true]);
    expect(RequestIds.empty.has("r1")).toBe(false);
    expect(b.add("r1")).toBe(b);
    expect(b.size).toBe(2);
  });

  it("a version taken up again after a newer one (a retried batch) forks without seeing the newer ids", () => {
    const base = RequestIds.empty.add("r1");
    const discarded = base.add("r2").add("r3");
    const retried = base.add("r3");
    expect([retried.has("r1"), retried.has("r2"), retried.has("r3")]).toEqual([true, false, true]);
    expect([discarded.has("r2"), discarded.has("r3")]).toEqual([true, true]);
    expect(retried.add("r2").has("r2")).toBe(true);
    expect(base.has("r3")).toBe(false);
  });

  it("pipelines starting from the empty set share nothing", () => {
    const one = RequestIds.empty.add("x");
    const other = RequestIds.empty.add("y");
    expect([one.has("y"), other.has("x")]).toEqual([false, false]);
  });

  it("appends to the newest version in place (no copy per request: 100,000 ids, one Map)", () => {
    let ids = RequestIds.empty;
    const versions = [];
    for (let i = 0; i < 100_000; i++) {
      ids = ids.add(`request-${i}`);
      if (i % 25_000 === 0) versions.push(ids);
    }
    expect(ids.size).toBe(100_000);
    // Older versions still see only their own ids, though they share the newest one's Map.
    expect(versions.map((v) => [v.size, v.has("request-0"), v.has("request-99999")])).toEqual([
      [1, true, false],
      [25_001, true, false],
      [50_001, true, false],
      [75_001, true, false],
    ]);
  });
});
