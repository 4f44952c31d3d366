import type { FieldConstraints } from "../../streams/events/common.ts";

export type LiteralValue = string | number | boolean;

/** A parsed type expression. `Optional[T]` is not a type here: it makes the field optional. */
export type TypeNode =
  | { kind: "str" | "int" | "float" | "bool" | "embedding" | "probability" | "confidence" }
  | { kind: "list"; item: TypeNode }
  | { kind: "dict"; value?: TypeNode }
  | { kind: "literal"; values: LiteralValue[] };

export const scalarTypes = ["str", "int", "float", "bool", "embedding", "probability", "confidence"] as const;

/** Spellings accepted in signatures, mapped to their canonical kind. */
export const typeAliases: Readonly<Record<string, string>> = {
  str: "str",
  int: "int",
  float: "float",
  bool: "bool",
  list: "list",
  List: "list",
  dict: "dict",
  Dict: "dict",
  Literal: "Literal",
  Optional: "Optional",
  embedding: "embedding",
  probability: "probability",
  confidence: "confidence",
};

/** Which constraints make sense for which type. */
export const constraintsFor = (type: TypeNode): readonly (keyof FieldConstraints)[] => {
  switch (type.kind) {
    case "str":
      return ["minLength", "maxLength", "pattern"];
    case "int":
    case "float":
    case "probability":
    case "confidence":
      return ["min", "max"];
    case "list":
      return ["minItems", "maxItems"];
    case "embedding":
      return ["dimensions"];
    default:
      return [];
  }
};

/** The canonical text of a type: what travels in `FieldSpec.type`. */
export const formatType = (type: TypeNode): string => {
  switch (type.kind) {
    case "list":
      return `list[${formatType(type.item)}]`;
    case "dict":
      return type.value ? `dict[str, ${formatType(type.value)}]` : "dict";
    case "literal":
      return `Literal[${type.values.map((v) => JSON.stringify(v)).join(", ")}]`;
    default:
      return type.kind;
  }
};
