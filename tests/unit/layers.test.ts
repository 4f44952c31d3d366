/**
 * The layers (docs/architecture.md): streams ← programs ← projections ← processors ← app ← cli. A file may import
 * from its own layer and the layers below it, never from one above.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const layers = ["streams", "programs", "projections", "processors", "app", "cli"] as const;
const rankOf = (path: string) =>
  layers.indexOf(relative(root, path).split("/")[0] as (typeof layers)[number]);

const sourcesOf = (folder: string): string[] =>
  readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourcesOf(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });

/** The relative modules a source imports (static, dynamic and type-only imports, and re-exports). */
const importsOf = (source: string): string[] =>
  [...source.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map((match) => match[1]!);

/** Every import that reaches up a layer, as "file → imported file". */
const upwardImports = (): string[] =>
  layers.flatMap((layer) =>
    sourcesOf(join(root, layer)).flatMap((file) =>
      importsOf(readFileSync(file, "utf8"))
        .map((specifier) => resolve(dirname(file), specifier))
        .filter((target) => rankOf(target) > rankOf(file))
        .map((target) => `${relative(root, file)} → ${relative(root, target)}`),
    ),
  );

describe("layers", () => {
  it("finds imports in every form it checks", () => {
    const source = [
      'import { a } from "../x/a.ts";',
      'import type { B } from "../y/b.ts";',
      'export { c } from "./c.ts";',
      'const d = await import("../../z/d.ts");',
      'import { e } from "rxjs";',
    ].join("\n");
    expect(importsOf(source)).toEqual(["../x/a.ts", "../y/b.ts", "./c.ts", "../../z/d.ts"]);
  });

  it("no file imports from a layer above its own (streams ← programs ← projections ← processors ← app ← cli)", () => {
    expect(upwardImports()).toEqual([]);
  });
});
