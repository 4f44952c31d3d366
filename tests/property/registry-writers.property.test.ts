import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decide,
  evolve,
  type RegistryCommand,
  type RegistryEvent,
  type VariableState,
} from "../../programs/registry.ts";
import { appliedCounter, propertySeed } from "../support/property.ts";

type Registry = Map<string, VariableState>;

const foldAll = (registry: Registry, events: readonly RegistryEvent[]): Registry => {
  const next = new Map(registry);
  for (const event of events) {
    const state = evolve(next.get(event.data.variableId), event);
    if (state) next.set(event.data.variableId, state);
  }
  return next;
};

const variableIds = ["v0", "v1"];
const leases = ["A", "B", "C"];
const declaration = {
  name: "temperature",
  spec: { kind: "float" as const, min: 0, max: 2, precision: 1 },
  initial: 1,
};

/** Commands that mostly succeed on their own: what matters here is two of them racing. */
const command: fc.Arbitrary<RegistryCommand> = fc.oneof(
  fc.record({
    type: fc.constant("set" as const),
    variableId: fc.constantFrom(...variableIds),
    value: fc.integer({ min: 0, max: 20 }).map((n) => n / 10),
    actor: fc.constantFrom("alice", "bob"),
  }),
  fc
    .record({ variableId: fc.constantFrom(...variableIds), leaseId: fc.constantFrom(...leases) })
    .chain(({ variableId, leaseId }) =>
      fc.constantFrom<RegistryCommand>(
        { type: "requestLease", variableId, leaseId, holder: leaseId },
        { type: "releaseLease", variableId, leaseId },
        { type: "propose", variableId, leaseId, actor: leaseId, value: 0.5 },
        { type: "propose", variableId, leaseId, actor: leaseId, value: 1.5 },
      ),
    ),
);

/**
 * Two writers append to one log, each deciding against its own view: what it wrote itself, and the
 * log as of its last sync (the race of two optimizers, or an optimizer and `dspex vars set`).
 */
const turn = fc.record({
  writer: fc.constantFrom(0, 1),
  command,
  sync: fc.boolean(),
});

describe("the registry under concurrent writers (the log's order decides)", () => {
  it("folds any interleaving to consecutive versions and one lease holder, never queued twice", () => {
    const commands = appliedCounter();
    fc.assert(
      fc.property(fc.array(turn, { maxLength: 60 }), (turns) => {
        const log = variableIds.flatMap((variableId) =>
          decide(undefined, { type: "declare", variableId, declaration }, { commandId: variableId }),
        );
        const views: Registry[] = [foldAll(new Map(), log), foldAll(new Map(), log)];
        let changes = 0;
        turns.forEach(({ writer, command, sync }, i) => {
          if (sync) views[writer] = foldAll(new Map(), log);
          let events: RegistryEvent[];
          commands.tried();
          try {
            events = decide(views[writer]!.get(command.variableId), command, { commandId: `c${i}` });
          } catch {
            return;
          }
          commands.applied();
          log.push(...events);
          changes += events.filter((event) => event.type === "VariableChanged").length;
          views[writer] = foldAll(views[writer]!, events);
        });
        const registry = foldAll(new Map(), log);
        const folded = variableIds.reduce((sum, id) => sum + (registry.get(id)?.version ?? 0), 0);
        const conflicts = variableIds.reduce((sum, id) => sum + (registry.get(id)?.rejections ?? 0), 0);
        expect(folded).toBeLessThanOrEqual(changes);
        expect(changes - folded).toBeLessThanOrEqual(conflicts);
        for (const variableId of variableIds) {
          const state = registry.get(variableId);
          if (!state) continue;
          const versions = state.history.map((change) => change.version);
          const newest = versions.at(-1) ?? 0;
          expect(versions).toEqual(versions.map((_, k) => newest - versions.length + 1 + k));
          expect(state.version).toBe(newest);
          const queued = state.queue.map((lease) => lease.leaseId);
          expect(new Set(queued).size).toBe(queued.length);
          if (state.lease) expect(queued).not.toContain(state.lease.leaseId);
        }
      }),
      { numRuns: 500, seed: propertySeed("registry writers") },
    );
    // Commands a writer's view refuses are skipped: most must still apply, or the race is barely tested.
    expect(commands.share("registry writers")).toBeGreaterThan(0.5);
  });
});
