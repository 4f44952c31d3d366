/** A signature that cannot be read: where (1-based column in `source`) and why. */
export class SignatureSyntaxError extends Error {
  constructor(
    readonly source: string,
    readonly column: number,
    readonly reason: string,
  ) {
    super(`invalid signature at column ${column}: ${reason}\n  ${source}\n  ${" ".repeat(column - 1)}^`);
    this.name = "SignatureSyntaxError";
  }
}
