import type { TestProject } from "vitest/node";
import { setupKafka } from "./support/kafka.ts";
import { findLeftovers, removeLeftovers } from "./support/leftovers.ts";

/**
 * Starts the services the suites need once per test run (the Kafka broker joins here); afterwards fails
 * the run if a test left a temporary folder or a process of ours behind (after removing them).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const began = Date.now();
  const teardowns: Array<() => Promise<void>> = [];
  teardowns.push(await setupKafka(project));
  return async () => {
    for (const teardown of teardowns.reverse()) await teardown();
    const left = findLeftovers(began);
    if (left.folders.length + left.processes.length === 0) return;
    removeLeftovers(left);
    throw new Error(
      `the tests left behind ${left.folders.length} temporary folders and ${left.processes.length} processes (removed now):\n${[...left.folders, ...left.processes].join("\n")}`,
    );
  };
}
