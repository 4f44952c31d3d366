/**
 * Many processes, one log: the same evaluation and optimization run once by a single `dspex processors`
 * and once by several — two at first, a third started mid-evaluation (partitions move to it), the one
 * running the optimization killed with -9 mid-optimization (its partitions, and the optimization, move
 * on). The outputs must be the same: the evaluation's results, the optimization's trials and winner,
 * the registry, one result per request. Real Python workers (the deterministic test LM) take the steps;
 * the topics have 3 partitions. Requests of three sessions run too: each session expires exactly once
 * (SessionExpired, the same ids), whichever instance owns it. A judge's scores of three programs come in
 * two halves, before and after the kill: the alerts processor raises and clears the same alerts. On the
 * embedded log and on Kafka.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { dspy, program, v } from "../../index.ts";
import { optimizationRequested } from "../../processors/optimizers/runner.ts";
import { startWorkerPool } from "../../processors/workers/pool.ts";
import { findPython } from "../../processors/workers/python.ts";
import { startStepRunner } from "../../processors/workers/step-runner.ts";
import { readRegistry, registerProgram } from "../../programs/register.ts";
import {
  type DspexEvent,
  EvaluationRequested,
  ExecutionRequested,
  MetricRecorded,
} from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";
import { caughtUp } from "../../streams/lag.ts";
import type { EventLog } from "../../streams/log.ts";
import { type LogConfig, openLog } from "../../streams/open.ts";
import { appendEvents, readEvents } from "../../streams/store.ts";
import { allTopics, Topics } from "../../streams/topics.ts";
import { type BackendUnderTest, embeddedBackend, skippedHere, temporaryFolder } from "../support/backends.ts";
import { type DspexChild, dspex, stopChild } from "../support/cli.ts";
import { kafkaBackend } from "../support/kafka.ts";
import { labelExamples, labelProgram, labelTaskRules } from "../support/label-task.ts";
import { labelBootstrap } from "./optimize-support.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the many-processes tests: ${found.reason}`);

const PARTITIONS = 3;
const evaluationId = "many-processes-evaluation";
const sessionIds = ["session-a", "session-b", "session-c"];
const optimizationId = "many-processes-optimization";
const judgedPrograms = ["watched-a", "watched-b", "watched-c"];
/** The alert rules and failover policy of every instance (`dspex processors --config`). */
const alertRules = [
  { metric: "judge", threshold: 0.35, warmup: 4 },
  { metric: "stage.failure_rate", direction: "up", threshold: 0.35, warmup: 4 },
];
const failover = [{ metric: "stage.failure_rate" }];

/** A watched program: an `answer` stage whose adapter is selected, a `route` stage whose model fails over. */
const watchedProgram = (programId: string) =>
  program(programId)
    .input("question: str")
    .stage("answer", dspy.predict("question -> answer"), {
      variables: { adapter: v.adapter(["json", "chat"], "json") },
    })
    .stage("route", dspy.predict("question -> route"), { variables: { model: v.model(["m", "m-next"]) } })
    .build();

/** The adapter selection of every instance: decide after 4 steps of each adapter. */
const adapterSelection = { minSteps: 4 };

/**
 * A judge's scores of each watched program, ids fixed: the scores of `half` 1 drop, those of 2 recover then
 * drop. With them, stage metrics of two adapters: json fails to parse, chat (explored) parses; half 2
 * finishes the tally, which switches the adapter. And the `route` stage's model: it completes in half 1 and
 * fails in half 2, whose alert moves the stage to the next model.
 */
const judged = (half: 1 | 2) => {
  const scores = half === 1 ? [1, 1, 1, 1, 1, 1, 0, 0, 0] : [1, 1, 1, 1, 1, 1, 0, 0, 0, 0];
  const metric = (
    programId: string,
    i: number,
    data: { name: string; value: number; labels?: Record<string, string> },
  ) =>
    MetricRecorded.create({
      id: derivedId("many-processes", `${data.name}/${programId}/${half}/${i}`),
      stream: `metrics-${programId}`,
      key: programId,
      data: { programId, ...data },
    });
  const step = (adapter: "chat" | "json") => ({
    name: "stage.duration_ms",
    value: 10,
    labels: {
      stage: "answer",
      model: "m",
      adapter,
      ...(adapter === "json"
        ? { status: "failed", error: "parse" }
        : { status: "completed", explored: "true" }),
    },
  });
  const route = (status: "completed" | "failed") => ({
    name: "stage.duration_ms",
    value: 10,
    labels: { stage: "route", model: "m", status },
  });
  const routed = half === 1 ? Array(4).fill("completed") : Array(2).fill("failed");
  return judgedPrograms.flatMap((programId) => [
    ...scores.map((value, i) => metric(programId, i, { name: "judge", value })),
    ...(["json", "chat"] as const).flatMap((adapter, a) =>
      [0, 1].map((i) => metric(programId, 100 * a + i, step(adapter))),
    ),
    ...routed.map((status, i) => metric(programId, 200 + i, route(status))),
  ]);
};

const eventsOn = async (log: EventLog, topic: string): Promise<DspexEvent[]> =>
  (await readEvents(log, topic)).flatMap((r) => ("event" in r ? [r.event] : []));

/** What the `dspex processors` children printed last: said when a wait times out. */
let printed: () => string = () => "";

const until = async <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 240_000) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${printed()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
};

/** Every group has committed every record of its input topics: nothing is left to do or redo. */
const quiescent = async (log: EventLog, groups: Record<string, readonly string[]>) => {
  for (const [group, topics] of Object.entries(groups))
    if (!(await caughtUp(log, group, topics))) return undefined;
  return true;
};

const inputsOf = {
  "dspex-pipeline": [Topics.requests, Topics.executions, Topics.stepResults],
  "dspex-evaluation": [Topics.requests, Topics.results],
  "dspex-registry": [Topics.variables],
  "dspex-optimizer": [Topics.requests],
  "dspex-alerts": [Topics.metrics],
  "dspex-adapters": [Topics.metrics],
  "dspex-failover": [Topics.metrics],
  "dspex-python-stdio": [Topics.steps],
};

/** The environment of a `dspex` child on this log. */
const envOf = (config: LogConfig): NodeJS.ProcessEnv =>
  config.backend === "kafka"
    ? {
        ...process.env,
        DSPEX_BACKEND: "kafka",
        DSPEX_KAFKA_BROKERS: String(config.brokers),
        DSPEX_KAFKA_NAMESPACE: config.namespace ?? "",
      }
    : { ...process.env, DSPEX_BACKEND: "embedded", DSPEX_LOG_PATH: (config as { path: string }).path };
const sessionTtl = { DSPEX_SESSION_TTL_MS: "1000" };

interface Outputs {
  sessions: unknown[];
  evaluation: unknown;
  optimization: unknown;
  trials: unknown[];
  variables: Record<string, unknown>;
  results: Record<string, unknown>;
  alerts: unknown[];
  adaptations: unknown[];
}

/**
 * Runs the evaluation and the optimization on a fresh log with `instances` processes of `dspex processors`;
 * with `disturb`, a third joins mid-evaluation and the optimization's runner is killed with -9 mid-way.
 */
const scenario = async (
  backend: BackendUnderTest,
  instances: number,
  disturb: boolean,
  cleanups: Array<() => Promise<unknown>>,
): Promise<{ outputs: Outputs; killed?: string }> => {
  const config = backend.freshConfig();
  const log = await openLog(config);
  cleanups.push(() => log.close());
  await log.ensureTopics(allTopics.map((topic) => ({ topic, partitions: PARTITIONS })));
  await registerProgram(log, labelProgram());
  for (const programId of judgedPrograms) await registerProgram(log, watchedProgram(programId));

  const rules = join(temporaryFolder("dspex-many-"), "rules.json");
  writeFileSync(rules, JSON.stringify(labelTaskRules()));
  const pool = startWorkerPool({ python: found.python!, workers: 2, args: ["--test-answers", rules] });
  const runner = startStepRunner(log, pool, { maxInFlight: 4 });
  cleanups.push(async () => {
    await runner.stop();
    await pool.close();
  });

  const env = { ...envOf(config), ...sessionTtl };
  const configFile = join(temporaryFolder("dspex-many-config-"), "dspex.config.json");
  writeFileSync(configFile, JSON.stringify({ alerts: alertRules, adapters: adapterSelection, failover }));
  const processes: DspexChild[] = [];
  printed = () =>
    processes
      .map((p, i) => `--- instance ${i + 1}:\n${[...p.lines, ...p.errors].slice(-30).join("\n")}`)
      .join("\n");
  const start = () => {
    const child = dspex(["processors", "--config", configFile, "--status-every", "1000"], env);
    processes.push(child);
    cleanups.push(() => stopChild(child.child));
    return child.waitFor(/processors ready/);
  };
  await Promise.all([pool.ready(180_000), ...Array.from({ length: instances }, start)]);

  const examples = labelExamples("dev", 18);
  await appendEvents(log, [
    EvaluationRequested.create({
      stream: `evaluation-${evaluationId}`,
      key: evaluationId,
      data: {
        evaluationId,
        programId: "label-qa",
        examples,
        metric: { name: "exact_match", field: "answer", params: {} },
        // Fixed demos: the registry's, which the optimization changes meanwhile, play no part.
        overrides: {
          "label-qa.answer.demos": labelExamples("train", 3).map((e) => ({ ...e.inputs, ...e.expected })),
        },
        concurrency: 3,
      },
    }),
    optimizationRequested({ ...labelBootstrap, optimizationId, programId: "label-qa" }),
    // Requests of three sessions, made long ago: each session expires once its request is done.
    ...sessionIds.map((sessionId, i) =>
      ExecutionRequested.create({
        id: derivedId("many-processes", sessionId),
        stream: `request-${sessionId}`,
        key: sessionId,
        occurredAt: "2026-01-01T00:00:00.000Z",
        data: {
          requestId: `${sessionId}-request`,
          programId: "label-qa",
          inputs: examples[i]!.inputs,
          sessionId,
        },
      }),
    ),
    ...judged(1),
  ]);

  let killed: string | undefined;
  if (disturb) {
    await until("the evaluation's first results", async () => {
      const results = (await eventsOn(log, Topics.results)).filter(
        (e) => e.type === "ExecutionCompleted" && e.data.evaluationId === evaluationId,
      );
      return results.length >= 4 ? true : undefined;
    });
    await start();
    const runnerOf = await until("the optimization's runner", async () =>
      processes.find((p) =>
        p.lines.some((line) => line.includes(`optimization ${optimizationId}: trial 2/`)),
      ),
    );
    runnerOf.child.kill("SIGKILL");
    killed = `instance ${processes.indexOf(runnerOf) + 1} of ${processes.length}`;
  }
  await appendEvents(log, judged(2));

  await until("the evaluation and the optimization to complete", async () => {
    const results = await eventsOn(log, Topics.results);
    const optimizations = await eventsOn(log, Topics.optimizations);
    return results.some((e) => e.type === "EvaluationCompleted") &&
      optimizations.some((e) => e.type === "OptimizationCompleted" || e.type === "OptimizationFailed")
      ? true
      : undefined;
  });
  const expiries = async () => {
    const events = (await eventsOn(log, Topics.executions)).filter((e) => e.type === "SessionExpired");
    return [...new Map(events.map((e) => [e.id, { id: e.id, data: e.data }])).values()];
  };
  await until("every session to expire", async () =>
    new Set((await expiries()).map((e) => e.data.sessionId)).size === sessionIds.length ? true : undefined,
  );
  await until("every group to commit its inputs", () => quiescent(log, inputsOf));
  // Once per alert (a redelivery writes the same id), without the times of the log's own clock.
  const alerts = [
    ...new Map(
      (await eventsOn(log, Topics.metrics))
        .filter((e) => e.type === "AlertRaised" || e.type === "AlertCleared")
        .map((e) => {
          const { raisedAt: _, ...data } = e.data as { raisedAt?: string };
          return [e.id, { id: e.id, type: e.type, causationId: e.causationId, data }];
        }),
    ).values(),
  ].sort((a, b) => a.id.localeCompare(b.id));
  const adaptations = [
    ...new Map(
      (await eventsOn(log, Topics.variables))
        .filter(
          (e) =>
            e.type === "VariableCommandIssued" &&
            "actor" in e.data &&
            (e.data.actor === "dspex-adapters" || e.data.actor === "dspex-failover"),
        )
        .map((e) => [e.id, { id: e.id, causationId: e.causationId, data: e.data }]),
    ).values(),
  ].sort((a, b) => a.id.localeCompare(b.id));

  const results = await eventsOn(log, Topics.results);
  const optimizations = await eventsOn(log, Topics.optimizations);
  const byRequest: Record<string, unknown[]> = {};
  const seen = new Set<string>();
  for (const event of results) {
    if (seen.has(event.id) || !("requestId" in event.data)) continue;
    seen.add(event.id);
    const { requestId } = event.data;
    const outcome =
      event.type === "ExecutionCompleted"
        ? { type: event.type, outputs: event.data.outputs, usage: event.data.usage }
        : { type: event.type };
    byRequest[requestId] = [...(byRequest[requestId] ?? []), outcome];
  }
  const { variables } = await readRegistry(log);
  const evaluation = results.find((e) => e.type === "EvaluationCompleted")!;
  const completed = optimizations.find(
    (e) => e.type === "OptimizationCompleted" || e.type === "OptimizationFailed",
  )!;
  const trials = [
    ...new Map(
      optimizations
        .filter((e) => e.type === "TrialEvaluated")
        .map((e) => [e.id, { trial: e.data.trial, score: e.data.score, calls: e.data.calls }]),
    ).values(),
  ].sort((a, b) => a.trial - b.trial);
  return {
    killed,
    outputs: {
      sessions: (await expiries()).sort((a, b) => a.id.localeCompare(b.id)),
      evaluation: { type: evaluation.type, data: evaluation.data },
      optimization: { type: completed.type, data: completed.data },
      trials,
      variables: Object.fromEntries(
        [...variables].map(([id, v]) => [id, { value: v.value, version: v.version, lease: v.lease }]),
      ),
      results: byRequest,
      alerts,
      adaptations,
    },
  };
};

describe.skipIf(!found.python).each([embeddedBackend, kafkaBackend])(
  "many processes, one log: $name",
  (backend) => {
    if (skippedHere(backend)) return;
    const cleanups: Array<() => Promise<unknown>> = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    }, 120_000);

    it("three instances of dspex processors, one started mid-evaluation and one killed -9 mid-optimization, give one instance's outputs", async () => {
      const one = await scenario(backend, 1, false, cleanups);
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      const many = await scenario(backend, 2, true, cleanups);

      expect((one.outputs.optimization as { type: string }).type).toBe("OptimizationCompleted");
      expect((one.outputs.evaluation as { data: { errors: number } }).data.errors).toBe(0);
      for (const outcomes of Object.values(many.outputs.results)) expect(outcomes).toHaveLength(1);
      expect(many.outputs.evaluation).toEqual(one.outputs.evaluation);
      expect(many.outputs.trials).toEqual(one.outputs.trials);
      expect(many.outputs.optimization).toEqual(one.outputs.optimization);
      expect(many.outputs.variables).toEqual(one.outputs.variables);
      expect(many.outputs.results).toEqual(one.outputs.results);
      expect(one.outputs.sessions).toHaveLength(sessionIds.length);
      expect(many.outputs.sessions).toEqual(one.outputs.sessions);
      // Per program: the judge's raised by the first half's drop, cleared and raised again by the second
      // half; the route stage's failure rate raised by the second half.
      expect(one.outputs.alerts.map((a) => (a as { type: string }).type).sort()).toEqual(
        [...Array(9).fill("AlertRaised"), ...Array(3).fill("AlertCleared")].sort(),
      );
      expect(many.outputs.alerts).toEqual(one.outputs.alerts);
      // Per program: one switch to chat, decided by the last chat step of the second half, and one move of the
      // route stage to the next model.
      expect(
        one.outputs.adaptations.map((c) => (c as { data: { variableId: string; value: string } }).data),
      ).toEqual(
        expect.arrayContaining(
          judgedPrograms.flatMap((id) => [
            expect.objectContaining({ variableId: `${id}.answer.adapter`, value: "chat" }),
            expect.objectContaining({ variableId: `${id}.route.model`, value: "m-next" }),
          ]),
        ),
      );
      expect(one.outputs.adaptations).toHaveLength(2 * judgedPrograms.length);
      for (const id of judgedPrograms)
        expect(one.outputs.variables[`${id}.route.model`]).toMatchObject({ value: "m-next", version: 1 });
      expect(many.outputs.adaptations).toEqual(one.outputs.adaptations);
      const optimization = one.outputs.optimization as { data: { trials: number; accepted: boolean } };
      console.log(
        `[many-processes ${backend.name}] ${Object.keys(one.outputs.results).length} requests, ${optimization.data.trials} trials ` +
          `(adopted: ${optimization.data.accepted}), ${one.outputs.alerts.length} alerts; with 3 instances and ${many.killed} killed -9: the same outputs`,
      );
    }, 900_000);
  },
);
