import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withCatalog } from "./catalog-doc.ts";
import { schemaFolder } from "./export-json-schema-path.ts";
import { eventJsonSchemas } from "./json-schema.ts";

const files = eventJsonSchemas();
mkdirSync(schemaFolder, { recursive: true });
for (const stale of readdirSync(schemaFolder)) if (!files.has(stale)) rmSync(join(schemaFolder, stale));
for (const [name, content] of files) writeFileSync(join(schemaFolder, name), content);
console.log(`wrote ${files.size} JSON Schema files to schemas/`);

const readme = new URL("../README.md", import.meta.url).pathname;
writeFileSync(readme, withCatalog(readFileSync(readme, "utf8")));
console.log("updated the event catalog in README.md");
