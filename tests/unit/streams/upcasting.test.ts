/**
 * Every schema version ever written stays readable: tests/vectors/events/ keeps a fixture per event type
 * and version (`npm run vectors` adds, never overwrites), and today's codec and upcasters read them all.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeBytes } from "../../../streams/codec.ts";
import { catalog, type EventDefinition } from "../../../streams/events/index.ts";

const fixtures = new URL("../../vectors/events/", import.meta.url).pathname;
const fixtureFiles = () => readdirSync(fixtures).filter((file) => file.endsWith(".json"));

/**
 * What keeps some written version from being read: a version without a fixture, an older version
 * without an upcaster, or a fixture of a type or version the catalog does not know.
 */
const upcastingGaps = (
  definitions: ReadonlyArray<Pick<EventDefinition, "type" | "version" | "upcasters">>,
  files: readonly string[],
): string[] => {
  const gaps: string[] = [];
  const present = new Set(files);
  const known = new Map(definitions.map((d) => [d.type, d]));
  for (const definition of definitions) {
    for (let version = 1; version <= definition.version; version++) {
      const file = `${definition.type}.v${version}.json`;
      if (!present.has(file))
        gaps.push(`${file} is missing: run \`npm run vectors\` before changing the schema`);
      if (version < definition.version && !definition.upcasters[version])
        gaps.push(`${definition.type} has no upcaster from version ${version}`);
    }
  }
  for (const file of files) {
    const match = /^(\w+)\.v(\d+)\.json$/.exec(file);
    const definition = match ? known.get(match[1]!) : undefined;
    if (!match || !definition) gaps.push(`${file} is not a fixture of a known event type`);
    else if (Number(match[2]) > definition.version) gaps.push(`${file} is newer than the catalog`);
  }
  return gaps;
};

describe("upcasting", () => {
  it("has a fixture for every version of every event type, and an upcaster from every older version", () => {
    expect(upcastingGaps(catalog, fixtureFiles())).toEqual([]);
  });

  it("fails when a new schema version has no fixture or an older one no upcaster", () => {
    const bumped = catalog.map((d) =>
      d.type === "ExecutionRequested" ? { ...d, version: 2, upcasters: { 1: (data: unknown) => data } } : d,
    );
    expect(upcastingGaps(bumped, fixtureFiles())).toEqual([
      "ExecutionRequested.v2.json is missing: run `npm run vectors` before changing the schema",
    ]);
    const noUpcaster = bumped.map((d) => (d.type === "ExecutionRequested" ? { ...d, upcasters: {} } : d));
    expect(upcastingGaps(noUpcaster, [...fixtureFiles(), "ExecutionRequested.v2.json"])).toEqual([
      "ExecutionRequested has no upcaster from version 1",
    ]);
    expect(
      upcastingGaps(catalog, [...fixtureFiles(), "Teleported.v1.json", "StepDispatched.v9.json"]),
    ).toEqual([
      "Teleported.v1.json is not a fixture of a known event type",
      "StepDispatched.v9.json is newer than the catalog",
    ]);
  });

  it("decodes the bytes of every fixture through today's codec, lifted to the current version", () => {
    const files = fixtureFiles();
    expect(files.length).toBeGreaterThanOrEqual(catalog.length);
    for (const file of files) {
      const [type] = file.split(".");
      const decoded = decodeBytes(readFileSync(join(fixtures, file)));
      expect(decoded.ok ? "ok" : decoded.reason, file).toBe("ok");
      if (!decoded.ok) continue;
      expect(decoded.event.type).toBe(type);
      expect(decoded.event.schemaVersion).toBe(catalog.find((d) => d.type === type)!.version);
    }
  });
});
