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
