/// <reference lib="dom" />
import { useEffect, useState } from "preact/hooks";
import { getJson } from "./api.ts";

const changedEvent = "dspex-changed";

/** Tells every view which read models changed (main.ts forwards the server's events here). */
export const announceChanges = (projections: string[]) =>
  window.dispatchEvent(new CustomEvent(changedEvent, { detail: projections }));

/**
 * The JSON at `path`, fetched again whenever one of `projections` changes on the server: the view is live.
 * `undefined` while loading, `null` when the server has no such thing.
 */
export const useLive = <T>(path: string, projections: readonly string[]): T | null | undefined => {
  const [value, setValue] = useState<T | null | undefined>(undefined);
  useEffect(() => {
    let current = true;
    let inFlight = false;
    let again = false;
    const load = async () => {
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      try {
        const body = await getJson<T>(path);
        if (current) setValue(body ?? null);
      } finally {
        inFlight = false;
        if (again && current) {
          again = false;
          void load();
        }
      }
    };
    const onChange = (event: Event) => {
      const changed = (event as CustomEvent<string[]>).detail;
      if (changed.some((p) => projections.includes(p))) void load();
    };
    void load();
    window.addEventListener(changedEvent, onChange);
    return () => {
      current = false;
      window.removeEventListener(changedEvent, onChange);
    };
  }, [path, projections.join(",")]);
  return value;
};
