import { describe, expect, it, vi } from "vitest";
import { progressLine } from "../../../cli/progress.ts";

const stream = (isTTY: boolean) => {
  const chunks: string[] = [];
  return { chunks, isTTY, write: (text: string) => chunks.push(text) };
};

describe("the progress line", () => {
  it("prints each update of piped output once, a line each, and nothing on a timer", () => {
    vi.useFakeTimers();
    try {
      const out = stream(false);
      const line = progressLine(out);
      line.update("trial 1/8 | baseline");
      line.update("trial 1/8 | baseline");
      vi.advanceTimersByTime(60_000);
      line.update("trial 2/8 | bootstrap");
      line.update("trial 2/8 | bootstrap");
      line.stop();
      vi.advanceTimersByTime(60_000);
      expect(out.chunks.join("")).toBe("trial 1/8 | baseline\ntrial 2/8 | bootstrap\n");
    } finally {
      vi.useRealTimers();
    }
  });

  it("rewrites one line in a terminal and ends it on stop", () => {
    const out = stream(true);
    const line = progressLine(out);
    line.update("trial 1/8");
    line.update("trial 1/8");
    line.update("trial 2/8");
    line.stop();
    expect(out.chunks).toEqual(["\rtrial 1/8\x1b[K", "\rtrial 2/8\x1b[K", "\n"]);
  });

  it("prints nothing when nothing was shown", () => {
    const out = stream(true);
    progressLine(out).stop();
    expect(out.chunks).toEqual([]);
  });
});
