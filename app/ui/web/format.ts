/** Short, stable text for values the views show. */

export const duration = (ms: unknown): string => {
  if (typeof ms !== "number") return "—";
  return ms < 1000
    ? `${Math.round(ms)} ms`
    : ms < 120_000
      ? `${(ms / 1000).toFixed(1)} s`
      : `${(ms / 60_000).toFixed(1)} min`;
};

export const time = (iso: unknown): string =>
  typeof iso === "string" ? new Date(iso).toLocaleTimeString(undefined, { hour12: false }) : "—";

export const score = (value: unknown): string => (typeof value === "number" ? value.toFixed(3) : "—");

/** A value as readable text: strings as they are, the rest as indented JSON. */
export const shown = (value: unknown): string =>
  typeof value === "string" ? value : JSON.stringify(value, null, 2);

export const short = (text: string, width = 80): string =>
  text.length > width ? `${text.slice(0, width - 1)}…` : text;
