import { recentIds } from "../../processors/runtime/index.ts";
import { answerEnvelope, answeredStep } from "../../processors/workers/step-answer.ts";
import { decodeRecord } from "../../streams/codec.ts";
import type { Envelope } from "../../streams/envelope.ts";
import {
  type EventOf,
  type JsonRecord,
  StepCompleted,
  type StepError,
  StepFailed,
} from "../../streams/events/index.ts";
import type { EventLog } from "../../streams/log.ts";
import { appendEvents, deadLetterOf } from "../../streams/store.ts";
import { Topics } from "../../streams/topics.ts";

export type Step = EventOf<"StepDispatched">["data"];

/** What the executor does with a step: outputs (default: a typed placeholder per field) or an error. */
export type StepBehaviour = (step: Step) => { outputs?: JsonRecord; error?: StepError; latencyMs?: number };

export interface TestExecutorOptions {
  group?: string;
  /** Latency of every step unless the behaviour says otherwise. */
  latencyMs?: number;
  behave?: StepBehaviour;
}

const placeholder = (type: string, name: string, step: Step): JsonRecord[string] => {
  const literal = /^Literal\[\s*["']([^"']*)["']/.exec(type);
  if (literal) return literal[1]!;
  if (type.startsWith("list")) return [];
  switch (type) {
    case "int":
      return 1;
    case "float":
    case "probability":
    case "confidence":
      return 0.5;
    case "bool":
      return true;
    case "dict":
      return {};
    default:
      return `${name} from ${step.stageId}`;
  }
};

/** Typed placeholder outputs: `"<field> from <stage>"` for strings, 1 for ints, [] for lists... */
export const placeholderOutputs = (step: Step): JsonRecord =>
  Object.fromEntries(step.signature.outputs.map((f) => [f.name, placeholder(f.type, f.name, step)]));

export const stepResultOf = (
  dispatched: EventOf<"StepDispatched">,
  behaviour: ReturnType<StepBehaviour>,
  latencyMs: number,
): Envelope => {
  const ref = answeredStep(dispatched, "test-executor");
  return behaviour.error
    ? StepFailed.create({
        ...answerEnvelope(dispatched, "failed"),
        data: { ...ref, error: behaviour.error, latencyMs },
      })
    : StepCompleted.create({
        ...answerEnvelope(dispatched, "completed"),
        data: {
          ...ref,
          outputs: behaviour.outputs ?? placeholderOutputs(dispatched.data),
          usage: { calls: 1, promptTokens: 10, completionTokens: 5 },
          latencyMs,
        },
      });
};

/**
 * Stands in for the Python consumers in tests and benchmarks: answers every StepDispatched,
 * deterministically, and delivers as they do: a batch's zero-latency results are appended, then its
 * offsets committed (at least once: results have ids derived from the step, so the pipeline drops a
 * repeat), with no transaction. Delayed results are appended later, so a stopped executor loses them
 * (as a crashed worker would).
 */
export const startTestExecutor = (log: EventLog, options: TestExecutorOptions = {}) => {
  const seen = recentIds(100_000);
  const timers = new Set<NodeJS.Timeout>();
  const steps: Step[] = [];
  const group = options.group ?? "dspex-test-executor";
  const consumer = log.consume({ group, topics: [Topics.steps], maxBatch: 500 }, async (batch) => {
    const now: Envelope[] = [];
    for (const record of batch.records) {
      const decoded = decodeRecord(record);
      if (!decoded.ok) {
        now.push(deadLetterOf(record, decoded.reason, group));
        continue;
      }
      const { event } = decoded;
      if (event.type !== "StepDispatched" || seen.has(event.id)) continue;
      seen.add(event.id);
      steps.push(event.data);
      const behaviour = options.behave?.(event.data) ?? {};
      const latencyMs = behaviour.latencyMs ?? options.latencyMs ?? 0;
      const result = stepResultOf(event, behaviour, latencyMs);
      if (latencyMs <= 0) now.push(result);
      else {
        const timer = setTimeout(() => {
          timers.delete(timer);
          void appendEvents(log, [result]).catch(() => undefined);
        }, latencyMs);
        timers.add(timer);
      }
    }
    await appendEvents(log, now);
  });
  return {
    /** Every step it received, in order. */
    steps,
    done: consumer.done,
    async stop() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await consumer.stop();
    },
  };
};
