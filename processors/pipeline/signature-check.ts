import { fieldsSignature } from "../../programs/signatures/index.ts";
import type { FieldSpec, JsonRecord } from "../../streams/events/index.ts";

export type FieldCheck = { ok: true; values: JsonRecord } | { ok: false; reason: string };

/**
 * Checks values against signature fields (the programs/ signature validators: types, constraints,
 * defaults), keeping only the signature's fields. Messages read like `question must be a string`.
 */
export const checkFields = (fields: readonly FieldSpec[], values: JsonRecord): FieldCheck => {
  try {
    const checked = fieldsSignature(fields).validateInputs(values);
    return checked.ok
      ? { ok: true, values: checked.value as JsonRecord }
      : { ok: false, reason: checked.message };
  } catch (error) {
    return { ok: false, reason: `the signature itself is invalid: ${(error as Error).message}` };
  }
};
