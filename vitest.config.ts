import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: "forks",
    // No retries: a test that fails once fails the run (a flaky test is a bug to fix, not to hide).
    setupFiles: ["tests/support/setup.ts"],
    globalSetup: ["tests/global-setup.ts"],
  },
});
