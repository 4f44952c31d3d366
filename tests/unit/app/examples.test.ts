import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readExamples } from "../../../app/examples.ts";

describe("examples from a JSONL file", () => {
  const folders: string[] = [];
  afterEach(() => {
    for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
  });
  const fileWith = (lines: unknown[]) => {
    const folder = mkdtempSync(join(tmpdir(), "dspex-examples-"));
    folders.push(folder);
    const path = join(folder, "dev.jsonl");
    writeFileSync(path, `${lines.map((line) => JSON.stringify(line)).join("\n")}\n`);
    return path;
  };

  it("names each example by file and line unless it has an id", () => {
    const path = fileWith([
      { inputs: { q: "1" }, expected: { a: "1" } },
      { id: "two", inputs: { q: "2" }, expected: { a: "2" } },
    ]);
    expect(readExamples(path).map((e) => e.id)).toEqual(["dev.jsonl:1", "two"]);
  });

  it("refuses an id used twice, naming both lines", () => {
    const path = fileWith([
      { id: "same", inputs: { q: "1" }, expected: { a: "1" } },
      { inputs: { q: "2" }, expected: { a: "2" } },
      { id: "same", inputs: { q: "3" }, expected: { a: "3" } },
    ]);
    expect(() => readExamples(path)).toThrow(`${path}:3: id "same" is already used on line 1`);
  });
});
