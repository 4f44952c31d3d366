import type { DspexEvent, EventType } from "../streams/events/index.ts";

/**
 * A read model folded from events, one entity per key. `evolve` is pure: it returns the entity's next
 * state from its current state and one event. `keysOf` says which entities an event touches and may
 * look entities up (joins such as execution → session).
 */
export interface Projection<Entity = unknown> {
  name: string;
  /** Bump when the fold changes: a snapshot of another version is not used (the runner rebuilds). */
  version: number;
  /** The event types it folds: others are skipped without being decoded. */
  types: readonly EventType[];
  keysOf(event: DspexEvent, get: (key: string) => Entity | undefined): readonly string[];
  evolve(entity: Entity | undefined, event: DspexEvent, key: string): Entity | undefined;
}

export type ProjectionState<Entity> = Map<string, Entity>;

/** A state with its lookup, made once: folds call `get` for joins, so it isn't a fresh closure per event. */
export interface Folding<Entity> {
  projection: Projection<Entity>;
  state: ProjectionState<Entity>;
  get: (key: string) => Entity | undefined;
}

export const folding = <Entity>(
  projection: Projection<Entity>,
  state: ProjectionState<Entity>,
): Folding<Entity> => ({ projection, state, get: (key) => state.get(key) });

/** Applies one event; calls `touched` with each key whose entity changed. */
export const foldInto = <Entity>(
  { projection, state, get }: Folding<Entity>,
  event: DspexEvent,
  touched?: (key: string) => void,
): void => {
  const keys = projection.keysOf(event, get);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const before = state.get(key);
    const after = projection.evolve(before, event, key);
    if (after === before) continue;
    if (after === undefined) state.delete(key);
    else state.set(key, after);
    touched?.(key);
  }
};

/** One step of a fold over the whole state; the caller owns `state` (the runner, or `project`). */
export const applyEvent = <Entity>(
  projection: Projection<Entity>,
  state: ProjectionState<Entity>,
  event: DspexEvent,
): string[] => {
  const touched: string[] = [];
  foldInto(folding(projection, state), event, (key) => touched.push(key));
  return touched;
};

/** Folds events from scratch (or onto a copy of `from`). */
export const project = <Entity>(
  projection: Projection<Entity>,
  events: Iterable<DspexEvent>,
  from?: ReadonlyMap<string, Entity>,
): ProjectionState<Entity> => {
  const state = new Map(from);
  const fold = folding(projection, state);
  for (const event of events) foldInto(fold, event);
  return state;
};

export const handles = (projection: Projection<unknown>, type: string): boolean =>
  (projection.types as readonly string[]).includes(type);
