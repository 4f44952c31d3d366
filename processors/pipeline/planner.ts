import { breaches, type Lookup } from "../../programs/variables/constraints.ts";
import { variableSpace } from "../../programs/variables/space.ts";
import {
  AdapterName,
  type JsonRecord,
  type LmConfig,
  type ProgramDefinition,
  type StageDefinition,
  type VariableDeclaration,
} from "../../streams/events/index.ts";

export class PlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PlanError";
  }
}

/** Stage ids grouped by dependency level; throws PlanError on an unknown dependency or a cycle. */
export const levelsOf = (stages: readonly Pick<StageDefinition, "id" | "dependsOn">[]): string[][] => {
  const ids = new Set<string>();
  for (const stage of stages) {
    if (ids.has(stage.id)) throw new PlanError(`stage ${stage.id} is declared twice`);
    ids.add(stage.id);
  }
  for (const stage of stages)
    for (const dependency of stage.dependsOn)
      if (!ids.has(dependency))
        throw new PlanError(`stage ${stage.id} depends on unknown stage ${dependency}`);

  const levels: string[][] = [];
  const placed = new Set<string>();
  while (placed.size < stages.length) {
    const level = stages
      .filter((s) => !placed.has(s.id) && s.dependsOn.every((d) => placed.has(d)))
      .map((s) => s.id);
    if (level.length === 0) throw new PlanError(`stages form a cycle: ${describeCycle(stages, placed)}`);
    for (const id of level) placed.add(id);
    levels.push(level);
  }
  return levels;
};

const describeCycle = (
  stages: readonly Pick<StageDefinition, "id" | "dependsOn">[],
  placed: ReadonlySet<string>,
): string => {
  const byId = new Map(stages.map((s) => [s.id, s]));
  const path: string[] = [];
  let current = stages.find((s) => !placed.has(s.id))!.id;
  while (!path.includes(current)) {
    path.push(current);
    current = byId.get(current)!.dependsOn.find((d) => !placed.has(d))!;
  }
  return [...path.slice(path.indexOf(current)), current].join(" → ");
};

/** Checks what a program's stages refer to; returns the reason it can't run, if any. */
export const programProblem = (program: ProgramDefinition): string | undefined => {
  try {
    levelsOf(program.stages);
  } catch (error) {
    return (error as Error).message;
  }
  const stages = new Map(program.stages.map((s) => [s.id, s]));
  for (const [output, source] of Object.entries(program.outputs)) {
    const [stageId, field] = source.split(".");
    const stage = stageId ? stages.get(stageId) : undefined;
    if (!stage || !field) return `output ${output} comes from unknown stage ${stageId}`;
    if (!stage.signature.outputs.some((f) => f.name === field))
      return `output ${output} comes from ${source}, which stage ${stageId} doesn't produce`;
  }
  for (const stage of program.stages)
    for (const [field, source] of Object.entries(stage.bindings)) {
      const [from] = source.split(".");
      if (from !== "input" && !stage.dependsOn.includes(from!))
        return `stage ${stage.id} binds ${field} to ${source}, but doesn't depend on ${from}`;
    }
  return undefined;
};

/**
 * The stages the given program outputs need (their source stages and everything those depend on), or
 * the reason an output is not the program's.
 */
export const stagesFor = (
  program: Pick<ProgramDefinition, "programId" | "outputs" | "stages">,
  outputs: readonly string[],
): { ok: true; stages: Set<string> } | { ok: false; reason: string } => {
  const unknown = outputs.filter((name) => !(name in program.outputs));
  if (unknown.length > 0)
    return {
      ok: false,
      reason: `${program.programId} has no output ${unknown.join(", ")} (its outputs: ${Object.keys(program.outputs).join(", ")})`,
    };
  const byId = new Map(program.stages.map((s) => [s.id, s]));
  const needed = new Set<string>();
  const visit = (id: string) => {
    if (needed.has(id)) return;
    needed.add(id);
    for (const dependency of byId.get(id)?.dependsOn ?? []) visit(dependency);
  };
  for (const name of outputs) visit(program.outputs[name]!.split(".")[0]!);
  return { ok: true, stages: needed };
};

/** A stage's inputs from the program inputs and its dependencies' outputs, following its bindings. */
export const stageInputs = (
  stage: StageDefinition,
  programInputs: JsonRecord,
  upstream: Readonly<Record<string, JsonRecord>>,
): JsonRecord => {
  const pick = (source: string): JsonRecord[string] | undefined => {
    const dot = source.indexOf(".");
    const from = source.slice(0, dot);
    const field = source.slice(dot + 1);
    return from === "input" ? programInputs[field] : upstream[from]?.[field];
  };
  const inputs: JsonRecord = {};
  for (const { name } of stage.signature.inputs) {
    const bound = stage.bindings[name];
    const value = bound
      ? pick(bound)
      : (stage.dependsOn.map((d) => upstream[d]?.[name]).find((v) => v !== undefined) ?? programInputs[name]);
    if (value !== undefined) inputs[name] = value;
  }
  return inputs;
};

/** The program's outputs, from `<stageId>.<field>` sources. */
export const programOutputs = (
  program: ProgramDefinition,
  stageOutputs: Readonly<Record<string, JsonRecord>>,
): JsonRecord => {
  const outputs: JsonRecord = {};
  for (const [name, source] of Object.entries(program.outputs)) {
    const [stageId, field] = source.split(".") as [string, string];
    const value = stageOutputs[stageId]?.[field];
    if (value !== undefined) outputs[name] = value;
  }
  return outputs;
};

// ── variables ────────────────────────────────────────────────────────────────

export interface VariableValue {
  value: JsonRecord[string];
  version: number;
}

/** Registry id of a variable: `<program>.<name>` for program variables, `<program>.<stage>.<name>` for stage ones. */
export const variableIdOf = (programId: string, name: string, stageId?: string): string =>
  stageId ? `${programId}.${stageId}.${name}` : `${programId}.${name}`;

export interface ResolvedVariable {
  id: string;
  declaration: VariableDeclaration;
  value: JsonRecord[string];
  /** The registry version used; 1 is the declared initial value, 0 means the request's override. */
  version: number;
}

/** One variable as a request runs it: its override (by full id or `<stage>.<name>`), else the registry's, else initial. */
const resolveOne = (
  program: ProgramDefinition,
  declaration: VariableDeclaration,
  stageId: string | undefined,
  registry: Readonly<Record<string, VariableValue>>,
  overrides: JsonRecord,
): ResolvedVariable => {
  const id = variableIdOf(program.programId, declaration.name, stageId);
  const relative = stageId ? `${stageId}.${declaration.name}` : declaration.name;
  const override = overrides[id] ?? overrides[relative];
  const known = registry[id];
  return override !== undefined
    ? { id, declaration, value: override, version: 0 }
    : { id, declaration, value: known?.value ?? declaration.initial, version: known?.version ?? 1 };
};

/**
 * The variables a stage runs with: stage variables shadow program ones of the same name;
 * a request override (by full id, `<stage>.<name>` or `<name>`) beats the registry, which beats the initial value.
 */
export const resolveVariables = (
  program: ProgramDefinition,
  stage: StageDefinition,
  registry: Readonly<Record<string, VariableValue>>,
  overrides: JsonRecord,
): Record<string, ResolvedVariable> => {
  const resolved: Record<string, ResolvedVariable> = {};
  const take = (declaration: VariableDeclaration, stageId?: string) => {
    resolved[declaration.name] = resolveOne(program, declaration, stageId, registry, overrides);
  };
  const computeComposites = (declarations: readonly VariableDeclaration[]) => {
    if (!declarations.some((d) => d.spec.kind === "composite")) return;
    const values = Object.fromEntries(declarations.map((d) => [d.name, resolved[d.name]!.value]));
    const computed = variableSpace(declarations).withComposites(values);
    for (const d of declarations)
      if (d.spec.kind === "composite")
        resolved[d.name] = { ...resolved[d.name]!, value: (computed[d.name] ?? null) as JsonRecord[string] };
  };
  // Each scope's composites are computed from that scope's values (a stage's shadow the program's).
  for (const declaration of program.variables) take(declaration);
  computeComposites(program.variables);
  for (const declaration of stage.variables) take(declaration, stage.id);
  computeComposites(stage.variables);
  return resolved;
};

/**
 * A variable's value as a request's execution would use it, by its name in the program (`name`, or
 * `stage.name`): the request's override, else the registry's value, else the declared initial value.
 */
export const configurationOf =
  (
    program: ProgramDefinition,
    registry: Readonly<Record<string, VariableValue>>,
    overrides: JsonRecord,
  ): Lookup =>
  (name) => {
    const [first, second] = name.split(".");
    const stage = second === undefined ? undefined : program.stages.find((s) => s.id === first);
    if (second !== undefined && !stage) return undefined;
    const declaration = (stage?.variables ?? program.variables).find((d) => d.name === (second ?? first));
    return declaration && resolveOne(program, declaration, stage?.id, registry, overrides).value;
  };

/** The constraints the program's configuration breaks once `changes` (values by variable id) replace the registry's. */
export const breachesWith = (
  program: ProgramDefinition,
  registry: Readonly<Record<string, VariableValue>>,
  changes: JsonRecord,
): string[] => breaches(program.constraints, configurationOf(program, registry, changes));

const dspyModules = ["Predict", "ChainOfThought", "ReAct", "Retrieve"] as const;
export type DspyModule = (typeof dspyModules)[number];

const asModule = (value: unknown): DspyModule | undefined => dspyModules.find((m) => m === value);

// A plain lookup: this runs on every dispatch.
const asAdapter = (value: unknown): AdapterName | undefined =>
  AdapterName.options.find((name) => name === value);

/** The share of executions whose step tries another adapter than the variable's, when it allows several. */
export const defaultAdapterExploration = 0.1;

/** A number in [0, 1) from a text (FNV-1a): the same execution always draws the same. */
const draw = (text: string): number => {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0) / 2 ** 32;
};

/**
 * The adapter a stage's step uses in this execution: the variable's, except in a deterministic share
 * (`exploration`) of executions that try another of its choices, so that every choice keeps being measured.
 */
export const adapterOf = (
  settings: Pick<StepSettings, "lm" | "adapters">,
  executionId: string,
  stageId: string,
): { adapter?: AdapterName; explored: boolean } => {
  const current = settings.lm.adapter;
  if (settings.adapters.exploration <= 0) return { adapter: current, explored: false };
  const others = settings.adapters.choices.filter((c) => c !== current);
  const roll = draw(`${executionId}/${stageId}`);
  if (others.length === 0 || roll >= settings.adapters.exploration)
    return { adapter: current, explored: false };
  return {
    adapter: others[Math.floor((roll / settings.adapters.exploration) * others.length)]!,
    explored: true,
  };
};

const asNumber = (value: unknown): number | undefined => (typeof value === "number" ? value : undefined);

/** What a DSPy step runs with, after variables: module, LM config, instructions, demos. */
export interface StepSettings {
  module: DspyModule;
  lm: LmConfig;
  /** The adapters an `adapter` choice variable allows, and the share of executions that try another one. */
  adapters: { choices: readonly AdapterName[]; exploration: number };
  instructions: string | undefined;
  demos: JsonRecord[];
  /** Models to try, in order, when the chosen model's circuit is open. */
  fallbacks: string[];
  variableVersions: Record<string, number>;
}

export const DEFAULT_MODEL = "dspex/test";

export const stepSettings = (
  stage: StageDefinition,
  variables: Readonly<Record<string, ResolvedVariable>>,
): StepSettings => {
  const value = (name: string) => variables[name]?.value;
  const config = stage.config;
  const model = String(value("model") ?? config.model ?? DEFAULT_MODEL);
  const modelSpec = variables.model?.declaration.spec;
  const chain =
    Array.isArray(config.fallbacks) && config.fallbacks.length > 0
      ? config.fallbacks.map(String)
      : modelSpec?.kind === "module" || modelSpec?.kind === "choice"
        ? modelSpec.choices.map(String)
        : [];
  const demos = value("demos");
  const instructions = value("instructions");
  const adapter = asAdapter(value("adapter")) ?? asAdapter(config.adapter);
  const adapterSpec = variables.adapter?.declaration.spec;
  const choices =
    adapterSpec?.kind === "choice" ? adapterSpec.choices.flatMap((c) => asAdapter(c) ?? []) : [];
  return {
    module: asModule(value("module")) ?? asModule(stage.module) ?? "Predict",
    lm: {
      model,
      temperature: asNumber(value("temperature")) ?? asNumber(config.temperature) ?? 0,
      maxTokens: asNumber(value("maxTokens") ?? value("max_tokens")) ?? asNumber(config.maxTokens) ?? 512,
      ...(adapter ? { adapter } : {}),
    },
    adapters: {
      choices,
      exploration:
        choices.length > 1 ? (asNumber(config.adapterExploration) ?? defaultAdapterExploration) : 0,
    },
    instructions: typeof instructions === "string" ? instructions : undefined,
    demos: Array.isArray(demos)
      ? (demos.filter((d) => typeof d === "object" && d !== null) as JsonRecord[])
      : [],
    fallbacks: chain.filter((m) => m !== model),
    variableVersions: Object.fromEntries(Object.values(variables).map((v) => [v.id, v.version])),
  };
};
