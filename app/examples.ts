import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { type Example, Example as ExampleSchema } from "../streams/events/index.ts";

/**
 * Examples from a JSONL file: one `{id?, inputs, expected}` per line; ids default to `<file>:<line>` and
 * must differ (an evaluation tells its examples' results apart by id).
 */
export const readExamples = (path: string): Example[] => {
  const lineOfId = new Map<string, number>();
  return readFileSync(path, "utf8")
    .split("\n")
    .map((line, i) => ({ line: line.trim(), number: i + 1 }))
    .filter(({ line }) => line.length > 0)
    .map(({ line, number }) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new Error(`${path}:${number}: not JSON`);
      }
      const parsed = ExampleSchema.safeParse({ id: `${basename(path)}:${number}`, ...(value as object) });
      if (!parsed.success) throw new Error(`${path}:${number}: expected {id?, inputs, expected}`);
      const earlier = lineOfId.get(parsed.data.id);
      if (earlier !== undefined)
        throw new Error(`${path}:${number}: id "${parsed.data.id}" is already used on line ${earlier}`);
      lineOfId.set(parsed.data.id, number);
      return parsed.data;
    });
};
