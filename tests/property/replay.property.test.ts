import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { decide, type RegistryCommand } from "../../programs/registry.ts";
import {
  applyEvent,
  executionsProjection,
  type Projection,
  projectionRunner,
  stateHash,
  variablesProjection,
} from "../../projections/index.ts";
import type { DspexEvent } from "../../streams/events/index.ts";
import {
  ExecutionCompleted,
  ExecutionStarted,
  StageCompleted,
  StageFailed,
  StageScheduled,
} from "../../streams/events/index.ts";
import type { EventLog } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { appendEvents } from "../../streams/store.ts";
import { backendsUnderTest, skippedHere } from "../support/backends.ts";
import { appliedCounter, propertySeed } from "../support/property.ts";

const variableIds = ["v0", "v1", "v2"];
const holders = ["opt-a", "opt-b", "opt-c"];

const declaration = {
  name: "temperature",
  spec: { kind: "float" as const, min: 0, max: 2, precision: 1 },
  initial: 1,
};

/** Registry commands, valid and invalid mixed (out-of-range values, unknown variables, foreign leases). */
const command: fc.Arbitrary<RegistryCommand> = fc.oneof(
  fc
    .constantFrom(...variableIds)
    .map((variableId) => ({ type: "declare" as const, variableId, declaration })),
  fc.record({
    type: fc.constant("set" as const),
    variableId: fc.constantFrom(...variableIds, "ghost"),
    value: fc.oneof(
      fc.integer({ min: -5, max: 25 }).map((n) => n / 10),
      fc.constant("hot"),
    ),
    actor: fc.constantFrom("alice", ...holders),
  }),
  fc.record({
    type: fc.constant("propose" as const),
    variableId: fc.constantFrom(...variableIds),
    value: fc.integer({ min: 0, max: 20 }).map((n) => n / 10),
    actor: fc.constantFrom(...holders),
    leaseId: fc.constantFrom(...holders),
  }),
  fc.record({
    type: fc.constant("requestLease" as const),
    variableId: fc.constantFrom(...variableIds),
    leaseId: fc.constantFrom(...holders),
    holder: fc.constantFrom(...holders),
  }),
  fc.record({
    type: fc.constant("releaseLease" as const),
    variableId: fc.constantFrom(...variableIds),
    leaseId: fc.constantFrom(...holders),
  }),
);

/** Execution lifecycle events for a few executions, in any order. */
const executionEvent: fc.Arbitrary<DspexEvent> = fc
  .record({
    n: fc.integer({ min: 0, max: 3 }),
    kind: fc.constantFrom("started", "scheduled", "stageCompleted", "stageFailed", "completed"),
    attempt: fc.integer({ min: 0, max: 2 }),
  })
  .map(({ n, kind, attempt }) => {
    const base = { stream: `execution-e${n}`, key: `e${n}` };
    const executionId = `e${n}`;
    switch (kind) {
      case "started":
        return ExecutionStarted.create({
          ...base,
          data: {
            executionId,
            requestId: `r${n}`,
            programId: "qa",
            programVersion: 1,
            sessionId: "s",
            inputs: {},
            levels: [["a"]],
          },
        });
      case "scheduled":
        return StageScheduled.create({ ...base, data: { executionId, stageId: "a", attempt } });
      case "stageCompleted":
        return StageCompleted.create({
          ...base,
          data: { executionId, stageId: "a", attempt, outputs: {}, durationMs: attempt },
        });
      case "stageFailed":
        return StageFailed.create({
          ...base,
          data: {
            executionId,
            stageId: "a",
            attempt,
            error: { kind: "timeout", message: "t", retryable: true },
            willRetry: attempt < 2,
          },
        });
      default:
        return ExecutionCompleted.create({
          ...base,
          data: {
            requestId: `r${n}`,
            executionId,
            programId: "qa",
            outputs: {},
            stages: {},
            durationMs: 5,
            usage: { calls: 1, promptTokens: 1, completionTokens: 1 },
          },
        });
    }
  });

const step = fc.oneof(
  command.map((c) => ({ command: c })),
  executionEvent.map((e) => ({ event: e })),
);

describe.each(backendsUnderTest)("replay gives the live state: $name", (backend) => {
  if (skippedHere(backend)) return;
  const logs: EventLog[] = [];
  afterAll(async () => {
    await Promise.all(logs.map((l) => l.close()));
  });

  it("for random command sequences, a rebuild from the log hashes the same as the live projections", async () => {
    const projections = [variablesProjection, executionsProjection] as Projection<unknown>[];
    const commands = appliedCounter();
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 60 }), async (steps) => {
        const log = await openLog(backend.freshConfig());
        logs.push(log);
        const live = new Map(projections.map((p) => [p.name, new Map<string, unknown>()]));
        const fold = (event: DspexEvent) => {
          for (const p of projections)
            if ((p.types as readonly string[]).includes(event.type)) applyEvent(p, live.get(p.name)!, event);
        };
        for (const s of steps) {
          const events =
            "command" in s
              ? (() => {
                  commands.tried();
                  try {
                    const decided = decide(
                      live.get("variables")!.get(s.command.variableId) as never,
                      s.command,
                    );
                    commands.applied();
                    return decided;
                  } catch {
                    return [];
                  }
                })()
              : [s.event];
          await appendEvents(log, events);
          for (const event of events) fold(event);
        }
        const replay = projectionRunner({ name: "replay", log, projections });
        await replay.rebuild();
        for (const p of projections)
          expect(stateHash(replay.state(p.name)), p.name).toBe(stateHash(live.get(p.name)));
        await log.close();
      }),
      // Each run opens a log; on Kafka that means creating topics, so fewer runs keep it well in time.
      { numRuns: backend.name === "kafka" ? 15 : 40, seed: propertySeed(`replay on ${backend.name}`) },
    );
    // Refused commands (a ghost variable, a value out of bounds) are part of the test, but not most of it.
    expect(commands.share(`replay on ${backend.name}`)).toBeGreaterThan(0.3);
  }, 90_000);
});
