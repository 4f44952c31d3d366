import type { ProgramDefinition, VariableConstraint } from "../../streams/events/variables.ts";
import { jsonEqual } from "./types.ts";

/** A variable's value by its name in the program: `name` (program-level) or `stage.name`. */
export type Lookup = (name: string) => unknown;

/** The names a program's constraints may use: its variables', program-level and `stage.name`. */
export const variableNamesOf = (program: Pick<ProgramDefinition, "variables" | "stages">): Set<string> =>
  new Set([
    ...program.variables.map((v) => v.name),
    ...program.stages.flatMap((s) => s.variables.map((v) => `${s.id}.${v.name}`)),
  ]);

/** The variables a constraint reads. */
export const constraintVariables = (constraint: VariableConstraint): string[] => [
  ...Object.keys(constraint.when),
  constraint.require.variable,
  ...(typeof constraint.require.than === "object" ? [constraint.require.than.variable] : []),
];

const compare = (left: unknown, op: VariableConstraint["require"]["op"], right: unknown): boolean => {
  if (op === "==") return jsonEqual(left, right);
  if (op === "!=") return !jsonEqual(left, right);
  if (typeof left !== "number" || typeof right !== "number") return false;
  return op === "<" ? left < right : op === "<=" ? left <= right : op === ">" ? left > right : left >= right;
};

/** Why the configuration breaks `constraint`, or undefined when it holds. */
export const breach = (constraint: VariableConstraint, lookup: Lookup): string | undefined => {
  const applies = Object.entries(constraint.when).every(([name, values]) =>
    values.some((value) => jsonEqual(lookup(name), value)),
  );
  if (!applies) return undefined;
  const { variable, op, than } = constraint.require;
  const left = lookup(variable);
  const right = typeof than === "object" ? lookup(than.variable) : than;
  if (compare(left, op, right)) return undefined;
  const rightText =
    typeof than === "object" ? `${than.variable} (${JSON.stringify(right)})` : JSON.stringify(right);
  return `${constraint.name}: ${variable} (${JSON.stringify(left)}) must be ${op} ${rightText}`;
};

/** Every constraint the configuration breaks, with the reason. */
export const breaches = (constraints: readonly VariableConstraint[], lookup: Lookup): string[] =>
  constraints.flatMap((c) => breach(c, lookup) ?? []);
