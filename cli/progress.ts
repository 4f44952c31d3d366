import { Headers } from "../streams/codec.ts";
import type { EventLog } from "../streams/log.ts";
import { Topics } from "../streams/topics.ts";

/** Where progress goes: a terminal gets one line rewritten in place, a pipe or file one line per change. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface ProgressLine {
  /** Shows `text` (a terminal rewrites its line; elsewhere it is printed unless it is the last one again). */
  update(text: string): void;
  /** Ends the line (a terminal keeps the last state on screen). */
  stop(): void;
}

/**
 * A progress line. Piped output gets each distinct update exactly once, as its own line, and nothing
 * on a timer — cli-progress's non-TTY mode re-printed the last state every few seconds, so logs
 * showed the same update again and again.
 */
export const progressLine = (stream: ProgressStream = process.stderr): ProgressLine => {
  let last: string | undefined;
  let open = false;
  return {
    update(text) {
      if (text === last) return;
      last = text;
      if (stream.isTTY) {
        stream.write(`\r${text}\x1b[K`);
        open = true;
      } else stream.write(`${text}\n`);
    },
    stop() {
      if (open) stream.write("\n");
      open = false;
    },
  };
};

const exampleResults = new Set(["ExecutionCompleted", "ExecutionFailed", "ExecutionRejected"]);

/**
 * Counts an evaluation's example results as they land (they are keyed by the evaluation) and shows
 * `label n/total`; subscribe it before the evaluation is requested. `stop()` ends it.
 */
export const evaluationProgress = (
  log: EventLog,
  evaluationId: string,
  total: number,
  label: string,
  stream: ProgressStream = process.stderr,
) => {
  const line = progressLine(stream);
  let done = 0;
  const counting = log.tail([Topics.results], { from: "end" }).subscribe({
    next: (record) => {
      if (record.key === evaluationId && exampleResults.has(record.headers[Headers.type] ?? ""))
        line.update(`${label} ${++done}/${total}`);
    },
    // Progress only: the work goes on without it.
    error: () => line.stop(),
  });
  return {
    stop() {
      counting.unsubscribe();
      line.stop();
    },
  };
};
