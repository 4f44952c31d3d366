import type { EventOf } from "../streams/events/index.ts";
import type { Projection } from "./projection.ts";

type Figures = EventOf<"AlertRaised">["data"];

/** One alert: what rose, when, and whether (and how) it cleared. */
export interface AlertView extends Omit<Figures, "current" | "observations"> {
  raisedAt: string;
  /** The series' recent average when the alert rose, and when it cleared. */
  raisedAtValue: number;
  clearedAt?: string;
  clearedAtValue?: number;
  /** The MetricRecorded that crossed the threshold. */
  raisedBy: string | null;
}

/** Every alert by its id, from its AlertRaised and AlertCleared (`dspex alerts` lists them). */
export const alertsProjection: Projection<AlertView> = {
  name: "alerts",
  version: 1,
  types: ["AlertRaised", "AlertCleared"],
  keysOf: (event) =>
    event.type === "AlertRaised" || event.type === "AlertCleared" ? [event.data.alertId] : [],
  evolve: (entity, event) => {
    if (event.type === "AlertRaised") {
      const { current, observations: _, ...figures } = event.data;
      return { ...figures, raisedAt: event.occurredAt, raisedAtValue: current, raisedBy: event.causationId };
    }
    if (event.type === "AlertCleared" && entity)
      return { ...entity, clearedAt: event.occurredAt, clearedAtValue: event.data.current };
    return entity;
  },
};

/** Open alerts first, then the latest. */
export const alertsOf = (state: ReadonlyMap<string, AlertView>): AlertView[] =>
  [...state.values()].sort(
    (a, b) =>
      Number(a.clearedAt !== undefined) - Number(b.clearedAt !== undefined) ||
      b.raisedAt.localeCompare(a.raisedAt),
  );
