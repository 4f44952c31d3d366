import type { TestProject } from "vitest/node";
import { setupKafka } from "./support/kafka.ts";

/** Starts the services the suites need once per test run (the Kafka broker joins here). */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const teardowns: Array<() => Promise<void>> = [];
  teardowns.push(await setupKafka(project));
  return async () => {
    for (const teardown of teardowns.reverse()) await teardown();
  };
}
