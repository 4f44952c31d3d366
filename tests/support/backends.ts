import { join } from "node:path";
import { it } from "vitest";
import type { LogConfig } from "../../streams/open.ts";
import { temporaryFolder } from "./cleanup.ts";
import { eventStoreDbBackend } from "./eventstoredb.ts";
import { kafkaBackend } from "./kafka.ts";

/** A backend the contract suite runs against; `skipReason` says why it can't run here, if so. */
export interface BackendUnderTest {
  name: string;
  skipReason(): string | undefined;
  /** A fresh, isolated log configuration (its own file, or its own topic prefix). */
  freshConfig(): LogConfig;
}

export { temporaryFolder };

export const embeddedBackend: BackendUnderTest = {
  name: "embedded",
  skipReason: () => undefined,
  freshConfig: () => ({
    backend: "embedded",
    path: join(temporaryFolder("dspex-log-"), "log.db"),
  }),
};

/**
 * Inside a `describe` for one backend: when it cannot run here, registers one skipped test named
 * with the reason and prints it (a skip is never silent) and returns true; the caller then registers nothing else.
 */
export const skippedHere = (backend: BackendUnderTest): boolean => {
  const reason = backend.skipReason();
  if (reason) {
    it.skip(`skipped: ${reason}`, () => undefined);
    console.log(`[${backend.name}] skipped: ${reason}`);
  }
  return reason !== undefined;
};

/** Every backend the contract suite knows. */
export const backendsUnderTest: BackendUnderTest[] = [embeddedBackend, kafkaBackend, eventStoreDbBackend];
