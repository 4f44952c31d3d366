/** How much of the source a message shows around the error (a huge signature makes no huge message). */
const excerptRadius = 60;

/** The source line with a caret under `column`, cut to a window around it when long. */
const pointAt = (source: string, column: number): string => {
  const start = Math.max(0, column - 1 - excerptRadius);
  const end = Math.min(source.length, column - 1 + excerptRadius);
  const before = start > 0 ? "..." : "";
  const after = end < source.length ? "..." : "";
  const caret = " ".repeat(before.length + column - 1 - start);
  return `  ${before}${source.slice(start, end)}${after}\n  ${caret}^`;
};

/** A signature that cannot be read: where (1-based column in `source`) and why. */
export class SignatureSyntaxError extends Error {
  constructor(
    readonly source: string,
    readonly column: number,
    readonly reason: string,
  ) {
    const shown = reason.length > 500 ? `${reason.slice(0, 500)}...` : reason;
    super(`invalid signature at column ${column}: ${shown}\n${pointAt(source, column)}`);
    this.name = "SignatureSyntaxError";
  }
}
