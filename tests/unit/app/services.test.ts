import { describe, expect, it } from "vitest";
import { watchProcessors } from "../../../app/services.ts";

const controllable = () => {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  done.catch(() => undefined);
  return { done, resolve, reject };
};

const never = new Promise<string>(() => undefined);

describe("watching the processors a command runs", () => {
  it("fails the work in hand with the reason when a processor fails (no silent stall)", async () => {
    const pipeline = controllable();
    const watch = watchProcessors({ pipeline, evaluations: controllable() });
    const work = watch.guard(never);
    pipeline.reject(new Error("CONCURRENT_TRANSACTIONS"));
    await expect(work).rejects.toThrow("the pipeline processor failed: CONCURRENT_TRANSACTIONS");
  });

  it("fails when a processor's consumer ends on its own", async () => {
    const evaluations = controllable();
    const watch = watchProcessors({ pipeline: controllable(), evaluations });
    const work = watch.guard(never);
    evaluations.resolve();
    await expect(work).rejects.toThrow("the evaluations processor stopped unexpectedly");
  });

  it("lets the work through, and says nothing once the processors are being stopped", async () => {
    const pipeline = controllable();
    const watch = watchProcessors({ pipeline });
    await expect(watch.guard(Promise.resolve("result"))).resolves.toBe("result");
    watch.stopping();
    pipeline.reject(new Error("stopped"));
    const outcome = await Promise.race([
      watch.failed.then(
        () => "failed",
        () => "failed",
      ),
      new Promise((r) => setTimeout(() => r("quiet"), 20)),
    ]);
    expect(outcome).toBe("quiet");
  });
});
