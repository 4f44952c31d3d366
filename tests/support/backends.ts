import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "vitest";
import type { LogConfig } from "../../streams/open.ts";
import { eventStoreDbBackend } from "./eventstoredb.ts";
import { kafkaBackend } from "./kafka.ts";

/** A backend the contract suite runs against; `skipReason` says why it can't run here, if so. */
export interface BackendUnderTest {
  name: string;
  skipReason(): string | undefined;
  /** A fresh, isolated log configuration (its own file, or its own topic prefix). */
  freshConfig(): LogConfig;
}

const temporaryFolders: string[] = [];
process.on("exit", () => {
  for (const folder of temporaryFolders) rmSync(folder, { recursive: true, force: true });
});

/** A temporary folder removed when the test process exits. */
export const temporaryFolder = (prefix: string): string => {
  const folder = mkdtempSync(join(tmpdir(), prefix));
  temporaryFolders.push(folder);
  return folder;
};

export const embeddedBackend: BackendUnderTest = {
  name: "embedded",
  skipReason: () => undefined,
  freshConfig: () => ({
    backend: "embedded",
    path: join(mkdtempSync(join(tmpdir(), "dspex-log-")), "log.db"),
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
