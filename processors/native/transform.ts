import type { JsonRecord } from "../../streams/events/index.ts";

/** A pure function from a stage's inputs (and its config) to its outputs. */
export type Transform = (inputs: JsonRecord, config: JsonRecord) => JsonRecord;

const first = (inputs: JsonRecord) => Object.values(inputs)[0];
const asText = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));

/** Transforms every pipeline knows; programs name them in `config.fn`. Each returns `{ value }` unless noted. */
export const builtinTransforms: Readonly<Record<string, Transform>> = {
  identity: (inputs) => inputs,
  uppercase: (inputs) => ({ value: asText(first(inputs)).toUpperCase() }),
  lowercase: (inputs) => ({ value: asText(first(inputs)).toLowerCase() }),
  trim: (inputs) => ({ value: asText(first(inputs)).trim() }),
  length: (inputs) => {
    const value = first(inputs);
    return { value: Array.isArray(value) || typeof value === "string" ? value.length : 0 };
  },
  join: (inputs, config) => {
    const value = first(inputs);
    return {
      value: Array.isArray(value) ? value.map(asText).join(String(config.separator ?? "\n")) : asText(value),
    };
  },
  split: (inputs, config) => ({ value: asText(first(inputs)).split(String(config.separator ?? "\n")) }),
  /** `{ merged }`: every input object merged into one. */
  merge: (inputs) => ({
    merged: Object.assign({}, ...Object.values(inputs).filter((v) => typeof v === "object")),
  }),
};
