import type { Readable } from "node:stream";

/**
 * Pulls batches from an object-mode stream (a subscription) without ever switching it to flowing
 * mode: what the handler has not asked for stays in the stream's buffer, and gRPC flow control
 * holds back the server — the backpressure the port promises.
 */
export class BatchReader<T> {
  private failure: unknown;
  private ended = false;

  constructor(private readonly source: Readable) {
    source.on("error", (error) => {
      this.failure = error;
    });
    source.on("end", () => {
      this.ended = true;
    });
    source.on("close", () => {
      this.ended = true;
    });
  }

  /** Up to `max` items, waiting for the first one; undefined once the source ended or `signal` aborted. */
  async take(max: number, signal: AbortSignal): Promise<T[] | undefined> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      const batch: T[] = [];
      while (batch.length < max) {
        const item = this.source.read() as T | null;
        if (item === null) break;
        batch.push(item);
      }
      if (batch.length > 0) return batch;
      if (this.ended || signal.aborted) return undefined;
      await this.somethingHappens(signal);
    }
  }

  private somethingHappens(signal: AbortSignal): Promise<void> {
    return new Promise((wake) => {
      const events = ["readable", "error", "end", "close"] as const;
      const done = () => {
        for (const event of events) this.source.off(event, done);
        signal.removeEventListener("abort", done);
        wake();
      };
      for (const event of events) this.source.once(event, done);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
