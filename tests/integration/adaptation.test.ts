/**
 * dspex adapts from its own telemetry: an online judge scores each answer of the label program; the test
 * LM behind the Python workers is switched mid-run to rules the adopted demos no longer fit (every code
 * renamed), so quality drops → the alerts processor sees the trend and raises an alert → the
 * re-optimizer answers it with an optimization on data of the new codes → the winner is adopted →
 * quality recovers → the alert clears. Each step is an event caused by the one before, and folding the
 * log again gives the same alerts and the same states.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { replay } from "../../app/replay.ts";
import { alertsProcessor } from "../../processors/adaptation/alerts.ts";
import type { TrendRule } from "../../processors/adaptation/trends.ts";
import { reoptimizationProcessor } from "../../processors/optimizers/reoptimize.ts";
import { startOptimizer } from "../../processors/optimizers/runner.ts";
import { startEvaluations } from "../../processors/optimizers/stream.ts";
import { startPipeline } from "../../processors/pipeline/pipeline.ts";
import { commandAnswered, startRegistry } from "../../processors/registry/registry.ts";
import { type Processor, rebuildTasks, runProcessor } from "../../processors/runtime/index.ts";
import { startWorkerPool } from "../../processors/workers/pool.ts";
import { findPython } from "../../processors/workers/python.ts";
import { startStepRunner } from "../../processors/workers/step-runner.ts";
import { registerProgram } from "../../programs/register.ts";
import { alertsProjection, project } from "../../projections/index.ts";
import { createClient } from "../../streams/client.ts";
import type { DspexEvent, EventOf } from "../../streams/events/index.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { readEvents } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";
import { temporaryFolder } from "../support/backends.ts";
import { dspex } from "../support/cli.ts";
import {
  codeOf,
  demosVariable,
  LABELS,
  labelExamples,
  labelProgram,
  labelProgramId,
  labelTaskRules,
} from "../support/label-task.ts";
import { untilCaughtUp } from "../support/waits.ts";
import { eventsOn } from "./optimize-support.ts";

const found = findPython();
if (!found.python) console.warn(`skipping the adaptation test: ${found.reason}`);

/** The codes after the switch: every label's code renamed, so demos of the old codes teach nothing. */
const renamed = (label: string) => `${codeOf(label)}-R`;

const rule: TrendRule = {
  programId: labelProgramId,
  metric: "judge",
  direction: "down",
  threshold: 0.35,
  relative: false,
  alpha: 0.3,
  baselineAlpha: 0.02,
  warmup: 6,
};

const policy = {
  programId: labelProgramId,
  trigger: "alert" as const,
  threshold: 0,
  metric: "judge",
  minExecutions: 1,
  margin: 0.1,
  request: {
    optimizer: "bootstrap" as const,
    variables: ["demos"],
    // Labelled data of the new codes, labels in turn: the first six bootstrapped demos cover every label.
    trainset: labelExamples("train", 12, LABELS, renamed),
    devset: labelExamples("dev", 6, LABELS, renamed),
    metric: { name: "exact_match", field: "answer", params: {} },
    budget: {},
    seed: 0,
    params: { maxBootstrappedDemos: 6, maxLabeledDemos: 12 },
  },
};

const ofType = <T extends DspexEvent["type"]>(events: DspexEvent[], type: T) =>
  events.filter((e): e is EventOf<T> => e.type === type);

/** Folds a processor over the log's records of its topics, from nothing: its state and what it emits. */
const refold = async <S>(log: EventLog, processor: Processor<S>) => {
  let state = processor.initialState;
  const emitted: DspexEvent[] = [];
  for (const topic of processor.topics)
    for (const record of await readEvents(log, topic)) {
      if (!("event" in record)) continue;
      const ctx = {
        now: record.record.timestamp,
        source: record.record,
        key: record.record.key,
        consumer: processor.name,
        table: undefined,
      };
      const out = processor.handle(state, record.event, ctx);
      state = out.state;
      emitted.push(...(out.emit as DspexEvent[]));
    }
  return { state, emitted };
};

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}, 60_000);

describe.skipIf(!found.python)(
  "adaptation: quality drops → alert → re-optimization → recovery (Python workers)",
  () => {
    it("raises, answers and clears the alert, each event caused by the one before, and a replay gives the same", async () => {
      const folder = temporaryFolder("dspex-adapt-");
      const logPath = join(folder, "log.db");
      const log = await openLog({ backend: "embedded", path: logPath });
      cleanups.push(() => log.close());
      const workers = (code: (label: string) => string, name: string) => {
        const rules = join(folder, `${name}.json`);
        writeFileSync(rules, JSON.stringify(labelTaskRules(LABELS, code)));
        const pool = startWorkerPool({ python: found.python!, workers: 2, args: ["--test-answers", rules] });
        const runner = startStepRunner(log, pool);
        const stop = async () => {
          await runner.stop();
          await pool.close();
        };
        cleanups.push(stop);
        return { ready: pool.ready(180_000), stop };
      };
      const before = workers(codeOf, "rules-before");
      const processors = [
        startPipeline(log),
        startEvaluations(log),
        startRegistry(log),
        runProcessor(log, reoptimizationProcessor([policy])),
        runProcessor(log, alertsProcessor([rule])),
      ];
      const optimizer = startOptimizer(log);
      cleanups.push(() => Promise.all([optimizer.stop(), ...processors.map((p) => p.stop())]));
      await Promise.all([before.ready, ...processors.map((p) => p.ready)]);
      await registerProgram(log, labelProgram());
      // The configuration in production: one demo per label, of today's codes.
      const demos = labelExamples("demo", LABELS.length).map((e) => ({ ...e.inputs, ...e.expected }));
      const set = await commandAnswered(log, {
        command: "set",
        variableId: demosVariable,
        value: demos,
        actor: "test",
      });
      expect(set.type).toBe("VariableChanged");

      // Production traffic, each answer scored by an online judge that knows the right codes of the day.
      const client = createClient(log);
      let n = 0;
      const serve = async (code: (label: string) => string) => {
        const label = LABELS[n % LABELS.length]!;
        const requestId = `prod-${n++}`;
        const result = await client.execute(
          { requestId, programId: labelProgramId, inputs: { label, question: `code of ${label}?` } },
          { timeoutMs: 60_000 },
        );
        expect(result.type).toBe("ExecutionCompleted");
        const answer = result.type === "ExecutionCompleted" ? result.data.outputs.answer : undefined;
        const score = answer === code(label) ? 1 : 0;
        await client.record({
          programId: labelProgramId,
          name: "judge",
          value: score,
          executionId: requestId,
        });
        return score;
      };
      const scoresBefore = [];
      for (let i = 0; i < 12; i++) scoresBefore.push(await serve(codeOf));
      expect(scoresBefore.every((s) => s === 1)).toBe(true);

      // The provider changes under us: the same workers' LM now answers with the renamed codes.
      await before.stop();
      const after = workers(renamed, "rules-after");
      await after.ready;
      const alertEvents = async () => ofType(await eventsOn(log, Topics.metrics), "AlertCleared");
      const scoresAfter: number[] = [];
      for (let i = 0; (await alertEvents()).length === 0; i++) {
        if (i >= 300)
          throw new Error(`no AlertCleared after ${i} executions; scores ${scoresAfter.join("")}`);
        scoresAfter.push(await serve(renamed));
      }
      await untilCaughtUp(log, { "dspex-alerts": [Topics.metrics], "dspex-reoptimizer": [Topics.metrics] });

      // The chain, each event caused by the one before.
      const metrics = await eventsOn(log, Topics.metrics);
      const [raised, ...moreRaised] = ofType(metrics, "AlertRaised");
      const [cleared, ...moreCleared] = ofType(metrics, "AlertCleared");
      expect(moreRaised).toEqual([]);
      expect(moreCleared).toEqual([]);
      const byId = new Map(metrics.map((e) => [e.id, e]));
      const crossedDown = byId.get(raised!.causationId!) as EventOf<"MetricRecorded">;
      expect(crossedDown).toMatchObject({ type: "MetricRecorded", data: { name: "judge", value: 0 } });
      expect(raised!.data).toMatchObject({
        programId: labelProgramId,
        metric: "judge",
        method: "ewma",
      });
      expect(raised!.data.baseline).toBeCloseTo(0.98); // the first 0 after twelve 1s; the alert froze it there

      const [request, ...moreRequests] = ofType(
        await eventsOn(log, Topics.requests),
        "OptimizationRequested",
      );
      expect(moreRequests).toEqual([]);
      expect(request!.causationId).toBe(raised!.id);
      expect(request!.data.params).toMatchObject({ triggeredByAlert: raised!.data.alertId });
      const { optimizationId } = request!.data;
      const optimizations = (await eventsOn(log, Topics.optimizations)).filter(
        (e) => e.key === optimizationId,
      );
      const started = ofType(optimizations, "OptimizationStarted")[0]!;
      expect(started.causationId).toBe(request!.id);
      expect(started.correlationId).toBe(request!.correlationId);
      const completed = ofType(optimizations, "OptimizationCompleted")[0]!;
      expect(completed.causationId).toBe(request!.id);
      expect(completed.data).toMatchObject({ accepted: true, baselineScore: 0, bestScore: 1 });
      const variables = await eventsOn(log, Topics.variables);
      const adopted = ofType(variables, "VariableChanged").filter(
        (e) => e.data.provenance?.optimizationId === optimizationId,
      );
      expect(adopted).toHaveLength(1);
      const proposal = variables.find((e) => e.id === adopted[0]!.causationId)!;
      expect(proposal).toMatchObject({ type: "VariableCommandIssued", causationId: completed.id });
      expect(new Set([proposal.correlationId, adopted[0]!.correlationId])).toEqual(
        new Set([request!.correlationId]),
      );
      const codes = (adopted[0]!.data.value as { answer: string }[]).map((d) => d.answer);
      expect(new Set(codes)).toEqual(new Set(LABELS.map(renamed)));

      const crossedBack = byId.get(cleared!.causationId!) as EventOf<"MetricRecorded">;
      expect(crossedBack).toMatchObject({ type: "MetricRecorded", data: { name: "judge", value: 1 } });
      expect(cleared!.data.alertId).toBe(raised!.id);
      expect(Date.parse(crossedBack.occurredAt)).toBeGreaterThanOrEqual(Date.parse(adopted[0]!.occurredAt));
      // Quality recovered: the answers after the adoption are right.
      expect(scoresAfter.slice(-4)).toEqual([1, 1, 1, 1]);

      // The same log folded again: the same alerts (ids included), the same task states, the same read model.
      const { state: alertState, emitted } = await refold(log, alertsProcessor([rule]));
      expect(emitted).toEqual([raised, cleared]);
      const rebuilt = await rebuildTasks(log, alertsProcessor([rule]), undefined);
      expect(rebuilt.get(0)!.state).toEqual(alertState);
      const reoptimizer = await refold(log, reoptimizationProcessor([policy]));
      expect(reoptimizer.emitted.map((e) => e.id)).toEqual([request!.id]);
      expect((await rebuildTasks(log, reoptimizationProcessor([policy]), undefined)).get(0)!.state).toEqual(
        reoptimizer.state,
      );
      const { alerts } = await replay(log);
      expect([...alerts.values()]).toEqual([...project(alertsProjection, [raised!, cleared!]).values()]);
      const listed = dspex(["alerts", "--log", logPath, "--json"], process.env);
      expect(await listed.exited).toBe(0);
      expect(JSON.parse(listed.lines.join("\n"))).toEqual([...alerts.values()]);
      const table = dspex(["alerts", "--log", logPath], process.env);
      expect(await table.exited).toBe(0);
      expect(table.lines.join("\n")).toMatch(
        /1 alerts, 0 open\n\s+label-qa\s+judge\s+fell to 0\.490 from 0\.980 .* cleared /,
      );
      const none = dspex(["alerts", "--log", logPath, "--open"], process.env);
      expect(await none.exited).toBe(0);
      expect(none.lines).toEqual(["no open alerts (1 cleared)"]);
      console.log(
        `adaptation: judge 1.000 on ${scoresBefore.length} answers; after the switch ${scoresAfter.length} answers ` +
          `(${scoresAfter.join("")}): alert raised at ${raised!.data.current.toFixed(3)} (baseline ${raised!.data.baseline.toFixed(3)}), ` +
          `optimization ${completed.data.baselineScore} → ${completed.data.bestScore} adopted, cleared at ${cleared!.data.current.toFixed(3)}`,
      );
    }, 600_000);
  },
);
