import type { TestProject } from "vitest/node";
import { findPython } from "../processors/workers/python.ts";
import { findChromium } from "./support/browser.ts";
import { kafkaForTests, setupKafka } from "./support/kafka.ts";
import { findLeftovers, markTestRun, removeLeftovers } from "./support/leftovers.ts";
import { collectorBinary } from "./support/otel-collector.ts";

/**
 * DSPEX_REQUIRE=kafka,python,browser,otel (the test command sets it): a service the suites need that is missing fails
 * the run at once instead of letting its tests skip — only a backend that cannot run here (EventStoreDB
 * without Docker) may skip.
 */
const requireServices = (required = (process.env.DSPEX_REQUIRE ?? "").split(",").filter(Boolean)) => {
  const missing: string[] = [];
  const kafka = kafkaForTests();
  if (required.includes("kafka") && "skipReason" in kafka) missing.push(`Kafka: ${kafka.skipReason}`);
  const python = findPython();
  if (required.includes("python") && !python.python) missing.push(`Python: ${python.reason}`);
  const chromium = findChromium();
  if (required.includes("browser") && "reason" in chromium) missing.push(`browser: ${chromium.reason}`);
  if (required.includes("otel") && !collectorBinary())
    missing.push("OpenTelemetry Collector: `bash infra/otel/collector.sh` could not build it (it needs Go)");
  if (missing.length > 0) throw new Error(`DSPEX_REQUIRE=${required.join(",")}, but ${missing.join("; ")}`);
};

/**
 * Starts the services the suites need once per test run (the Kafka broker joins here); afterwards fails
 * the run if a test left a temporary folder or a process of ours behind (after removing them).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const run = markTestRun();
  const teardowns: Array<() => Promise<void>> = [];
  teardowns.push(await setupKafka(project));
  requireServices();
  return async () => {
    for (const teardown of teardowns.reverse()) await teardown();
    const left = findLeftovers(run);
    removeLeftovers(run, left);
    if (left.folders.length + left.processes.length === 0) return;
    throw new Error(
      `the tests left behind ${left.folders.length} temporary folders and ${left.processes.length} processes (removed now):\n${[...left.folders, ...left.processes].join("\n")}`,
    );
  };
}
