/**
 * A native stage and a metric of your own: a transform that redacts long numbers before the classifier
 * sees the message, and a metric that accepts any of several categories. Both are plain functions given
 * to the processors that run them; programs and evaluations refer to them by name.
 *
 *   npx tsx examples/custom-stage-and-metric.ts
 */
import {
  connect,
  dspy,
  type Metric,
  native,
  program,
  startProcessors,
  startWorkers,
  type Transform,
  v,
} from "dspex";

const redact: Transform = (inputs) => ({ value: String(inputs.message).replace(/\d{4,}/g, "[number]") });
const acceptable: Metric = (prediction, expected) =>
  String(expected.accepted).split("|").includes(String(prediction.category)) ? 1 : 0;

const dspex = await connect();
await dspex.register(
  program("example-redacted-triage")
    .input("message: str")
    .variable("model", v.model([dspex.config.lm.model]))
    .stage("redact", native.transform("message -> clean: str", { fn: "redact" }))
    .stage("classify", dspy.predict("clean -> category: Literal['billing', 'shipping', 'technical']"), {
      dependsOn: ["redact"],
    })
    .output("clean", "redact.clean")
    .output("category", "classify.category"),
);

const processors = startProcessors(dspex, {
  only: ["pipeline", "evaluation"],
  transforms: { redact },
  metrics: { acceptable },
});
const workers = startWorkers(dspex, { workers: 1 });
try {
  await Promise.all([processors.ready(), workers.ready()]);
  const examples = [
    { message: "Card 4111111111111111 was charged twice", accepted: "billing" },
    { message: "Parcel 99881234 never arrived", accepted: "shipping|billing" },
    { message: "The app crashes when I log in", accepted: "technical" },
  ].map(({ message, accepted }, i) => ({ id: `example-${i}`, inputs: { message }, expected: { accepted } }));
  const outcome = await dspex.evaluate({
    programId: "example-redacted-triage",
    examples,
    metric: { name: "acceptable", field: "category", params: {} },
  });
  for (const result of outcome.results)
    console.log(`${result.exampleId}: ${JSON.stringify(result.outputs)} scored ${result.score}`);
  console.log(
    `score ${outcome.score.toFixed(3)} on ${outcome.results.length} examples, ${outcome.errors} errors`,
  );
} finally {
  await workers.stop();
  await processors.stop();
  await dspex.close();
}
