import type { FieldConstraints, FieldSpec, SignatureSpec } from "../../streams/events/common.ts";
import { SignatureSyntaxError } from "./syntax-error.ts";
import { constraintsFor, formatType, type LiteralValue, type TypeNode, typeAliases } from "./types.ts";

/** Constraint names as written in a signature → their wire names. */
const constraintNames: Readonly<Record<string, keyof FieldConstraints>> = {
  min_length: "minLength",
  max_length: "maxLength",
  pattern: "pattern",
  min: "min",
  max: "max",
  min_items: "minItems",
  max_items: "maxItems",
  dim: "dimensions",
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The deepest nesting of types or of values a signature may have (the reader recurses once per level). */
export const maxSignatureNesting = 32;

/** A recursive-descent reader over one line of signature text; columns are 1-based. */
class Reader {
  pos = 0;
  constructor(readonly text: string) {}

  fail(reason: string, at = this.pos): never {
    throw new SignatureSyntaxError(this.text, at + 1, reason);
  }
  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }
  peek(): string {
    this.skipSpace();
    return this.text[this.pos] ?? "";
  }
  startsWith(token: string): boolean {
    this.skipSpace();
    return this.text.startsWith(token, this.pos);
  }
  eat(token: string): boolean {
    if (!this.startsWith(token)) return false;
    this.pos += token.length;
    return true;
  }
  expect(token: string, what: string): void {
    if (!this.eat(token)) this.fail(`expected ${what}, found ${this.found()}`);
  }
  found(): string {
    this.skipSpace();
    if (this.pos >= this.text.length) return "the end";
    return JSON.stringify(this.text.slice(this.pos, this.pos + 8).split(/\s/)[0] || this.text[this.pos]);
  }
  identifier(what: string): { name: string; at: number } {
    this.skipSpace();
    const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.pos));
    if (!match) this.fail(`expected ${what}, found ${this.found()}`);
    const at = this.pos;
    this.pos += match[0].length;
    return { name: match[0], at };
  }
  string(): string {
    this.skipSpace();
    const quote = this.text[this.pos];
    if (quote !== '"' && quote !== "'") this.fail(`expected a quoted string, found ${this.found()}`);
    const start = this.pos;
    let out = "";
    this.pos++;
    while (this.pos < this.text.length && this.text[this.pos] !== quote) {
      if (this.text[this.pos] === "\\" && this.pos + 1 < this.text.length) {
        // Like Python: \\ \" \' \n \t are escapes; any other backslash stays (regex patterns need them).
        const escaped = this.text[++this.pos]!;
        out +=
          ({ n: "\n", t: "\t", "\\": "\\", '"': '"', "'": "'" } as Record<string, string>)[escaped] ??
          `\\${escaped}`;
        this.pos++;
      } else {
        // A run of plain characters at once: huge strings stay linear.
        let end = this.pos + 1;
        while (end < this.text.length && this.text[end] !== quote && this.text[end] !== "\\") end++;
        out += this.text.slice(this.pos, end);
        this.pos = end;
      }
    }
    if (this.pos >= this.text.length) this.fail("unterminated string", start);
    this.pos++;
    return out;
  }
  number(): number {
    this.skipSpace();
    const match = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(this.text.slice(this.pos));
    if (!match) this.fail(`expected a number, found ${this.found()}`);
    this.pos += match[0].length;
    return Number(match[0]);
  }
  /** A JSON-like value: strings in either quote, numbers, true/false/True/False, null/None, lists, dicts. */
  value(depth = 0): Json {
    if (depth > maxSignatureNesting) this.fail(`values nest deeper than ${maxSignatureNesting} levels`);
    const c = this.peek();
    if (c === '"' || c === "'") return this.string();
    if (c === "-" || c === "." || /\d/.test(c)) return this.number();
    if (this.eat("[")) {
      const items: Json[] = [];
      if (!this.eat("]")) {
        do items.push(this.value(depth + 1));
        while (this.eat(","));
        this.expect("]", '"]" to close the list');
      }
      return items;
    }
    if (this.eat("{")) {
      const entries: Record<string, Json> = {};
      if (!this.eat("}")) {
        do {
          const key = this.string();
          this.expect(":", '":" after a dict key');
          entries[key] = this.value(depth + 1);
        } while (this.eat(","));
        this.expect("}", '"}" to close the dict');
      }
      return entries;
    }
    const word = /^[A-Za-z]+/.exec(this.text.slice(this.pos))?.[0];
    const words: Record<string, Json> = {
      true: true,
      True: true,
      false: false,
      False: false,
      null: null,
      None: null,
    };
    if (word !== undefined && word in words) {
      this.pos += word.length;
      return words[word]!;
    }
    return this.fail(`expected a value, found ${this.found()}`);
  }
}

interface ParsedType {
  type: TypeNode;
  optional: boolean;
}

const readType = (r: Reader, depth = 0): ParsedType => {
  if (depth > maxSignatureNesting) r.fail(`types nest deeper than ${maxSignatureNesting} levels`);
  const { name, at } = r.identifier("a type");
  const canonical = typeAliases[name];
  if (!canonical)
    r.fail(
      `unknown type "${name}" (known: str, int, float, bool, list[T], dict, Literal[...], Optional[T], embedding, probability, confidence)`,
      at,
    );
  switch (canonical) {
    case "Optional": {
      r.expect("[", `"[" after Optional`);
      const inner = readType(r, depth + 1);
      r.expect("]", `"]" to close Optional[`);
      return { type: inner.type, optional: true };
    }
    case "Literal": {
      r.expect("[", `"[" after Literal`);
      const values: LiteralValue[] = [];
      do {
        r.skipSpace();
        const valueAt = r.pos;
        const value = r.value();
        if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean")
          r.fail("Literal values must be strings, numbers or booleans", valueAt);
        if (values.includes(value)) r.fail(`Literal value ${JSON.stringify(value)} is repeated`, valueAt);
        values.push(value);
      } while (r.eat(","));
      r.expect("]", `"]" to close Literal[`);
      return { type: { kind: "literal", values }, optional: false };
    }
    case "list": {
      if (!r.eat("[")) return { type: { kind: "list", item: { kind: "str" } }, optional: false };
      const item = readType(r, depth + 1);
      if (item.optional) r.fail("list items cannot be Optional", at);
      r.expect("]", `"]" to close list[`);
      return { type: { kind: "list", item: item.type }, optional: false };
    }
    case "dict": {
      if (!r.eat("[")) return { type: { kind: "dict" }, optional: false };
      const key = r.identifier("the key type str");
      if (key.name !== "str") r.fail(`dict keys must be str, found "${key.name}"`, key.at);
      r.expect(",", '"," between the dict key and value types');
      const value = readType(r, depth + 1);
      r.expect("]", `"]" to close dict[`);
      return { type: { kind: "dict", value: value.type }, optional: false };
    }
    default:
      return { type: { kind: canonical } as TypeNode, optional: false };
  }
};

const readConstraints = (r: Reader, type: TypeNode): FieldConstraints => {
  const constraints: FieldConstraints = {};
  const positions: Partial<Record<keyof FieldConstraints, number>> = {};
  const allowed = constraintsFor(type);
  if (r.eat(")")) return constraints;
  do {
    const { name, at } = r.identifier("a constraint name");
    const key = constraintNames[name];
    if (!key) r.fail(`unknown constraint "${name}" (known: ${Object.keys(constraintNames).join(", ")})`, at);
    if (!allowed.includes(key)) r.fail(`constraint "${name}" does not apply to ${formatType(type)}`, at);
    if (key in constraints) r.fail(`constraint "${name}" is given twice`, at);
    positions[key] = at;
    r.expect("=", `"=" after ${name}`);
    r.skipSpace();
    const valueAt = r.pos;
    const value = r.value();
    if (key === "pattern") {
      if (typeof value !== "string") r.fail("pattern must be a quoted string", valueAt);
      try {
        new RegExp(value);
      } catch (error) {
        r.fail(`pattern is not a valid regular expression: ${(error as Error).message}`, valueAt);
      }
      constraints.pattern = value;
    } else {
      if (typeof value !== "number") r.fail(`${name} must be a number`, valueAt);
      const integral = key !== "min" && key !== "max";
      if (integral && (!Number.isInteger(value) || value < 0))
        r.fail(`${name} must be a non-negative integer`, valueAt);
      if (key === "dimensions" && value === 0) r.fail("dim must be positive", valueAt);
      constraints[key] = value;
    }
  } while (r.eat(","));
  r.expect(")", '")" to close the constraints');
  const pairs: [keyof FieldConstraints, keyof FieldConstraints, string][] = [
    ["minLength", "maxLength", "min_length > max_length"],
    ["min", "max", "min > max"],
    ["minItems", "maxItems", "min_items > max_items"],
  ];
  for (const [low, high, message] of pairs) {
    const a = constraints[low];
    const b = constraints[high];
    if (typeof a === "number" && typeof b === "number" && a > b) r.fail(message, positions[high]);
  }
  if (type.kind === "probability") {
    if ((constraints.min ?? 0) < 0) r.fail("probability bounds must lie within 0..1", positions.min);
    if ((constraints.max ?? 1) > 1) r.fail("probability bounds must lie within 0..1", positions.max);
  }
  if (type.kind === "confidence" && (constraints.min ?? 0) < 0)
    r.fail("confidence min must be ≥ 0", positions.min);
  return constraints;
};

export interface ParsedField {
  field: FieldSpec;
  type: TypeNode;
  /** 0-based positions of the name and of the default value in the text. */
  at: number;
  defaultAt?: number;
}

const readField = (r: Reader, seen: Set<string>): ParsedField => {
  const { name, at } = r.identifier("a field name");
  if (seen.has(name)) r.fail(`field "${name}" is declared twice`, at);
  seen.add(name);
  let optional = r.eat("?");
  let type: TypeNode = { kind: "str" };
  let constraints: FieldConstraints | undefined;
  if (r.eat(":")) {
    const parsed = readType(r);
    type = parsed.type;
    optional ||= parsed.optional;
    if (r.eat("(")) constraints = readConstraints(r, type);
  }
  const field: FieldSpec = { name, type: formatType(type), optional };
  if (constraints && Object.keys(constraints).length > 0) field.constraints = constraints;
  let defaultAt: number | undefined;
  if (r.eat("=")) {
    r.skipSpace();
    defaultAt = r.pos;
    field.default = r.value();
  }
  const next = r.peek();
  if (next === '"' || next === "'") field.description = r.string();
  return { field, type, at, defaultAt };
};

const readFields = (r: Reader, side: string): ParsedField[] => {
  const fields: ParsedField[] = [];
  const seen = new Set<string>();
  if (r.startsWith("->") || r.peek() === "") r.fail(`expected at least one ${side} field`);
  do fields.push(readField(r, seen));
  while (r.eat(","));
  return fields;
};

export interface ParsedSignature {
  spec: SignatureSpec;
  inputs: ParsedField[];
  outputs: ParsedField[];
}

/**
 * Reads `[ "instructions" ] inputs -> outputs`, each field `name[?][: type[(constraints)]] [= default] ["description"]`.
 * Throws SignatureSyntaxError with the 1-based column and the reason.
 */
export const parseSignatureText = (text: string, instructions?: string): ParsedSignature => {
  const r = new Reader(text);
  let written = "";
  const first = r.peek();
  if (first === '"' || first === "'") written = r.string();
  const inputs = readFields(r, "input");
  if (!r.eat("->")) r.fail(`expected "," or "->" after the input fields, found ${r.found()}`);
  const outputs = readFields(r, "output");
  if (r.peek() !== "") r.fail(`expected "," or the end, found ${r.found()}`);
  const outputNames = new Set(outputs.map((o) => o.field.name));
  for (const input of inputs)
    if (outputNames.has(input.field.name))
      r.fail(`field "${input.field.name}" is both an input and an output`, input.at);
  return {
    spec: {
      instructions: instructions ?? written,
      inputs: inputs.map((f) => f.field),
      outputs: outputs.map((f) => f.field),
    },
    inputs,
    outputs,
  };
};

/** Reads a wire type expression (`FieldSpec.type`) back into a type. */
export const parseTypeExpression = (text: string): ParsedType => {
  const r = new Reader(text);
  const parsed = readType(r);
  if (r.peek() !== "") r.fail(`expected the end of the type, found ${r.found()}`);
  return parsed;
};
