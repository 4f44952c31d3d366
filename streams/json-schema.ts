import { z } from "zod";
import { catalog } from "./events/index.ts";

/** The JSON Schema of every event envelope, by file name: what non-TypeScript clients validate against. */
export const eventJsonSchemas = (): Map<string, string> => {
  const files = new Map<string, string>();
  for (const definition of catalog) {
    const schema = z.toJSONSchema(definition.envelope, { io: "input", unrepresentable: "any" });
    const document = {
      ...schema,
      $id: `https://dspex.dev/schemas/${definition.type}.v${definition.version}.json`,
      title: definition.type,
      "x-dspex-topic": definition.topic,
    };
    files.set(`${definition.type}.v${definition.version}.json`, `${JSON.stringify(document, null, 2)}\n`);
  }
  const index = catalog.map((d) => ({ type: d.type, version: d.version, topic: d.topic }));
  files.set("index.json", `${JSON.stringify(index, null, 2)}\n`);
  return files;
};
