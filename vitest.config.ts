import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Integration tests share 2 cores with a real broker and Python processes; a test that fails
    // once is run once more (and reported as flaky) rather than failing the suite. Unit tests are
    // deterministic and never need it.
    retry: 1,
    globalSetup: ["tests/global-setup.ts"],
  },
});
