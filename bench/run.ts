/** `npm run bench` runs every suite; `npm run bench -- <suite> [...]` runs the named ones. */
import { consumersSuite } from "./consumers.ts";
import { kafkaSuite } from "./kafka.ts";
import { logSuite } from "./log.ts";
import { optimizersSuite } from "./optimizers.ts";
import { pipelineSuite } from "./pipeline.ts";
import { programsSuite } from "./programs.ts";
import { figures, type Suite } from "./report.ts";

const suites: Suite[] = [logSuite, kafkaSuite, programsSuite, pipelineSuite, optimizersSuite, consumersSuite];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !suites.some((s) => s.name === name));
if (unknown.length > 0) {
  console.error(`unknown suite ${unknown.join(", ")}; suites: ${suites.map((s) => s.name).join(", ")}`);
  process.exit(2);
}
const chosen = wanted.length === 0 ? suites : suites.filter((s) => wanted.includes(s.name));
for (const suite of chosen) {
  console.log(`# ${suite.name}: ${suite.description}`);
  await suite.run();
}
console.log("\nsummary");
console.table(
  figures.map((f) => ({
    metric: `${f.suite}.${f.metric}`,
    value: Number(f.value.toPrecision(4)),
    unit: f.unit,
  })),
);
