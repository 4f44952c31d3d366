import { InvalidArgumentError } from "commander";
import type { JsonRecord } from "../streams/events/index.ts";

/** Parsers for command-line arguments: each explains what it expected. */
export const jsonObject = (text: string): JsonRecord => {
  try {
    const value = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value;
  } catch {}
  throw new InvalidArgumentError(`expected a JSON object, got ${JSON.stringify(text)}`);
};

export const positiveNumber = (text: string): number => {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError("expected a positive number");
  return value;
};

export const positiveInteger = (text: string): number => {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new InvalidArgumentError("expected a positive integer");
  return value;
};
