import { z } from "zod";
import { Topics } from "../topics.ts";
import { FieldSpec, Id, OptimizationHints, SignatureSpec } from "./common.ts";
import { defineEvent } from "./define.ts";

/** How a variable may vary: the wire form of a variable type (programs/ gives it behaviour). */
export const VariableSpec = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("float"),
    min: z.number(),
    max: z.number(),
    precision: z.number().int().nonnegative().optional(),
  }),
  z.object({
    kind: z.literal("integer"),
    min: z.number().int(),
    max: z.number().int(),
    step: z.number().int().positive().default(1),
  }),
  z.object({
    kind: z.literal("choice"),
    choices: z.array(z.json()).min(1),
    allowCustom: z.boolean().default(false),
  }),
  z.object({ kind: z.literal("module"), choices: z.array(z.string().min(1)).min(1) }),
  z.object({ kind: z.literal("text"), maxLength: z.number().int().positive().default(4000) }),
  z.object({ kind: z.literal("demos"), maxItems: z.number().int().nonnegative().default(16) }),
  z.object({
    kind: z.literal("composite"),
    dependsOn: z.array(z.string().min(1)).min(1),
    compute: z.string().min(1),
  }),
]);
export type VariableSpec = z.infer<typeof VariableSpec>;

export const VariableDeclaration = z.object({
  name: z.string().min(1),
  spec: VariableSpec,
  initial: z.json(),
  description: z.string().optional(),
});
export type VariableDeclaration = z.infer<typeof VariableDeclaration>;

/**
 * A rule between a program's variables, named by `name` (program-level) or `stage.name`: `require` must hold
 * whenever every variable in `when` has one of the listed values. The registry's values and a request's
 * overrides together must keep it; optimizers never try a configuration that breaks it.
 */
export const VariableConstraint = z.object({
  name: z.string().min(1),
  when: z.record(z.string(), z.array(z.json()).min(1)).default({}),
  require: z.object({
    variable: z.string().min(1),
    op: z.enum(["<", "<=", ">", ">=", "==", "!="]),
    than: z.union([z.number(), z.string(), z.boolean(), z.object({ variable: z.string().min(1) })]),
  }),
});
export type VariableConstraint = z.infer<typeof VariableConstraint>;

export const StageDefinition = z.object({
  id: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/),
  /** `dspy` stages run in Python consumers; `native` stages run in-process in TypeScript. */
  runtime: z.enum(["dspy", "native"]),
  /** DSPy module (Predict, ChainOfThought, ReAct) or native op (retrieve, transform, template, validate). */
  module: z.string().min(1),
  signature: SignatureSpec,
  dependsOn: z.array(z.string()).default([]),
  /** Where each input comes from: `input.<field>` or `<stageId>.<field>`; default: same-named field. */
  bindings: z.record(z.string(), z.string()).default({}),
  config: z.record(z.string(), z.json()).default({}),
  variables: z.array(VariableDeclaration).default([]),
});
export type StageDefinition = z.infer<typeof StageDefinition>;

export const ProgramDefinition = z.object({
  programId: Id,
  version: z.number().int().positive(),
  description: z.string().default(""),
  inputs: z.array(FieldSpec).min(1),
  outputs: z.record(z.string(), z.string()).describe("program output field → `<stageId>.<field>`"),
  stages: z.array(StageDefinition).min(1),
  variables: z.array(VariableDeclaration).default([]),
  constraints: z.array(VariableConstraint).default([]),
  hints: OptimizationHints.optional(),
});
export type ProgramDefinition = z.infer<typeof ProgramDefinition>;

export const ProgramRegistered = defineEvent("ProgramRegistered", {
  topic: Topics.variables,
  data: ProgramDefinition,
});

export const VariableDeclared = defineEvent("VariableDeclared", {
  topic: Topics.variables,
  data: z.object({
    variableId: Id,
    programId: Id.optional(),
    declaration: VariableDeclaration,
  }),
});

export const Provenance = z.object({
  optimizationId: Id,
  scoreBefore: z.number().optional(),
  scoreAfter: z.number().optional(),
});

export const VariableChanged = defineEvent("VariableChanged", {
  topic: Topics.variables,
  data: z.object({
    variableId: Id,
    value: z.json(),
    previous: z.json(),
    version: z.number().int().positive(),
    actor: z.string().min(1),
    reason: z.string().default(""),
    provenance: Provenance.optional(),
  }),
});

export const VariableChangeRejected = defineEvent("VariableChangeRejected", {
  topic: Topics.variables,
  data: z.object({
    variableId: Id,
    value: z.json(),
    actor: z.string().min(1),
    reason: z.string().min(1),
  }),
});

const Lease = z.object({
  variableId: Id,
  leaseId: Id,
  holder: z.string().min(1),
  /**
   * The holder (or the one waiting) renews the lease at least this often, or the registry releases it:
   * a lease cannot outlive its holder. Without one it lasts until released.
   */
  ttlMs: z.number().int().positive().optional(),
});

export const VariableLeaseRequested = defineEvent("VariableLeaseRequested", {
  topic: Topics.variables,
  data: Lease,
});
export const VariableLeaseGranted = defineEvent("VariableLeaseGranted", {
  topic: Topics.variables,
  data: Lease,
});
/** The holder (or one waiting) is alive: its lease's time to live starts again now. */
export const VariableLeaseRenewed = defineEvent("VariableLeaseRenewed", {
  topic: Topics.variables,
  data: z.object({ variableId: Id, leaseId: Id }),
});
export const VariableLeaseReleased = defineEvent("VariableLeaseReleased", {
  topic: Topics.variables,
  data: Lease.extend({
    /** Why, when it was not its holder letting go: expired, or released by an operator. */
    reason: z.string().optional(),
  }),
});

/**
 * A command to the variable registry, published on the log (key: the variable id). The registry processor
 * (processors/registry/) decides it against the variable's state and answers with VariableDeclared,
 * VariableChanged, VariableChangeRejected or lease events caused by it (their ids derive from its id).
 */
export const VariableCommand = z.discriminatedUnion("command", [
  z.object({
    command: z.literal("declare"),
    variableId: Id,
    programId: Id.optional(),
    declaration: VariableDeclaration,
  }),
  z.object({
    command: z.literal("set"),
    variableId: Id,
    value: z.json(),
    actor: z.string().min(1),
    reason: z.string().optional(),
  }),
  z.object({
    command: z.literal("propose"),
    variableId: Id,
    value: z.json(),
    actor: z.string().min(1),
    leaseId: Id,
    reason: z.string().optional(),
    provenance: Provenance.optional(),
  }),
  z.object({
    command: z.literal("requestLease"),
    variableId: Id,
    leaseId: Id,
    holder: z.string().min(1),
    ttlMs: z.number().int().positive().optional(),
  }),
  z.object({ command: z.literal("renewLease"), variableId: Id, leaseId: Id }),
  z.object({
    command: z.literal("releaseLease"),
    variableId: Id,
    leaseId: Id,
    /** Given when someone else than the holder releases it (an operator). */
    reason: z.string().optional(),
  }),
  /** Issued by the registry itself when a lease's time to live passed; decided against what came first. */
  z.object({ command: z.literal("expireLease"), variableId: Id, leaseId: Id }),
]);
export type VariableCommand = z.infer<typeof VariableCommand>;

export const VariableCommandIssued = defineEvent("VariableCommandIssued", {
  topic: Topics.variables,
  data: VariableCommand,
});

export const variableEvents = [
  ProgramRegistered,
  VariableDeclared,
  VariableChanged,
  VariableChangeRejected,
  VariableLeaseRequested,
  VariableLeaseGranted,
  VariableLeaseRenewed,
  VariableLeaseReleased,
  VariableCommandIssued,
] as const;
