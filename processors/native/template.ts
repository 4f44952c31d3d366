import type { JsonRecord } from "../../streams/events/index.ts";

const show = (value: unknown): string =>
  value === undefined || value === null
    ? ""
    : typeof value === "string"
      ? value
      : Array.isArray(value)
        ? value.map(show).join("\n")
        : JSON.stringify(value);

const lookup = (values: JsonRecord, path: string): unknown =>
  path
    .split(".")
    .reduce<unknown>((current, part) => (current as Record<string, unknown> | null)?.[part], values);

/** Fills `{field}` and `{field.sub}` placeholders; lists become one item per line; `{{` is a literal brace. */
export const renderTemplate = (template: string, values: JsonRecord): string =>
  template.replace(/\{\{|\}\}|\{([A-Za-z_][\w.]*)\}/g, (match, path: string | undefined) =>
    path === undefined ? match[0]! : show(lookup(values, path)),
  );

/** The placeholders a template uses that `values` lack. */
export const missingPlaceholders = (template: string, values: JsonRecord): string[] =>
  [...template.matchAll(/\{([A-Za-z_][\w.]*)\}/g)]
    .map((m) => m[1]!)
    .filter((path) => lookup(values, path) === undefined);
