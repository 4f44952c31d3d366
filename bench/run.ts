/**
 * `npm run bench` runs every suite; `npm run bench -- <suite> [...]` runs the named ones.
 * Each figure is a `bench: <suite>.<metric> = <number> <unit>` line; notes are `#` lines; a summary
 * of every figure closes the run (also written as JSON to DSPEX_BENCH_JSON, when set).
 */
import { writeFileSync } from "node:fs";
import { consumersSuite } from "./consumers.ts";
import { kafkaSuite } from "./kafka.ts";
import { learningSuite } from "./learning.ts";
import { logSuite } from "./log.ts";
import { logVsKafkaSuite } from "./log-vs-kafka.ts";
import { memorySuite } from "./memory.ts";
import { optimizersSuite } from "./optimizers.ts";
import { peersSuite } from "./peers.ts";
import { pipelineSuite } from "./pipeline.ts";
import { programsSuite } from "./programs.ts";
import { figureLine, figures, machine, type Suite, summary } from "./report.ts";
import { soakSuite } from "./soak.ts";

const suites: Suite[] = [
  logSuite,
  kafkaSuite,
  logVsKafkaSuite,
  programsSuite,
  memorySuite,
  pipelineSuite,
  optimizersSuite,
  consumersSuite,
  peersSuite,
];

/** Suites that run only when named: they take minutes and stress the machine. */
const onDemand: Suite[] = [soakSuite, learningSuite];

const wanted = process.argv.slice(2);
const known = [...suites, ...onDemand];
const unknown = wanted.filter((name) => !known.some((s) => s.name === name));
if (unknown.length > 0) {
  console.error(`unknown suite ${unknown.join(", ")}; suites: ${known.map((s) => s.name).join(", ")}`);
  process.exit(2);
}

// `bench:` starts figures only: a suite's other `bench:` lines (skips, notes) are printed as `#` lines.
const print = console.log.bind(console);
console.log = (...args: unknown[]) => {
  const [first, ...rest] = args;
  if (typeof first === "string" && first.startsWith("bench: ") && !figureLine.test(first))
    return print(`# ${first.slice("bench: ".length)}`, ...rest);
  return print(...args);
};

const chosen = wanted.length === 0 ? suites : known.filter((s) => wanted.includes(s.name));
console.log(`# dspex bench: ${chosen.map((s) => s.name).join(", ")}`);
console.log(`# ${machine()}`);
const failed: string[] = [];
for (const suite of chosen) {
  console.log(`# ${suite.name}: ${suite.description}`);
  const started = Date.now();
  try {
    await suite.run();
  } catch (error) {
    failed.push(suite.name);
    console.error(`# ${suite.name} failed: ${(error as Error).stack ?? error}`);
  }
  console.log(`# ${suite.name} took ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
console.log(`\nsummary (${machine()})\n${summary()}`);
if (process.env.DSPEX_BENCH_JSON)
  writeFileSync(
    process.env.DSPEX_BENCH_JSON,
    `${JSON.stringify({ machine: machine(), suites: chosen.map((s) => s.name), failed, figures }, null, 2)}\n`,
  );
if (failed.length > 0) {
  console.error(`# failed: ${failed.join(", ")}`);
  process.exitCode = 1;
}
