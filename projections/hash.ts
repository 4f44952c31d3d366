import { createHash } from "node:crypto";

/** JSON with object keys sorted at every depth, Maps as sorted objects: equal states, equal text. */
export const canonicalJson = (value: unknown): string => {
  if (value instanceof Map) return canonicalJson(Object.fromEntries(value));
  if (value === null || typeof value !== "object") {
    const text = JSON.stringify(value);
    return text === undefined ? "null" : text;
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
};

/** A stable hash of a projection state: sha256 of its canonical JSON, hex. */
export const stateHash = (state: unknown): string =>
  createHash("sha256").update(canonicalJson(state)).digest("hex");
