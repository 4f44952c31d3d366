import type { z } from "zod";
import { type FieldSpec, OptimizationHints, type SignatureSpec } from "../streams/events/common.ts";
import { retrieveConfigOf } from "../streams/events/steps.ts";
import {
  ProgramDefinition,
  type ProgramDefinition as ProgramDefinitionType,
  ProgramRegistered,
  type StageDefinition,
  VariableConstraint,
  type VariableDeclaration,
  VariableSpec,
} from "../streams/events/variables.ts";
import type { OutputsOf } from "./signatures/infer.ts";
import { signature } from "./signatures/signature.ts";
import { constraintVariables, variableNamesOf } from "./variables/constraints.ts";
import { variableSpace } from "./variables/space.ts";

type Json = z.infer<ReturnType<typeof z.json>>;

/** Fields by name, typed where the signature's text says how. */
export type Fields = Record<string, unknown>;

/** Type only, never at runtime: what a stage or program outputs. */
declare const outputTypes: unique symbol;

/** What a stage runs: a DSPy module in a Python consumer, or a native op in-process. */
export interface StageOp<Outputs extends Fields = Fields> {
  runtime: "dspy" | "native";
  module: string;
  signature: SignatureSpec;
  config: Record<string, Json>;
  readonly [outputTypes]?: Outputs;
}

/** A program definition whose outputs are typed from its signatures (`execute` returns them typed). */
export type TypedProgram<Outputs extends Fields = Fields> = ProgramDefinitionType & {
  readonly [outputTypes]?: Outputs;
};

/** The outputs a built program declares. */
export type ProgramOutputs<P> = P extends { readonly [outputTypes]?: infer O } ? O : Fields;

type Flat<T> = { [K in keyof T]: T[K] } & {};

/** The type of `<stage>.<field>` among the stages declared so far (`input.<field>`: unknown). */
type FieldAt<Stages, From extends string> = From extends `${infer Stage}.${infer Field}`
  ? Stage extends keyof Stages
    ? Field extends keyof Stages[Stage]
      ? Stages[Stage][Field]
      : unknown
    : unknown
  : unknown;

const op =
  (runtime: StageOp["runtime"], module: string) =>
  <const Text extends string>(
    text: Text | SignatureSpec,
    config: Record<string, Json> = {},
  ): StageOp<OutputsOf<Text>> => ({
    runtime,
    module,
    signature: typeof text === "string" ? signature(text).spec : text,
    config,
  });

export const dspy = {
  predict: op("dspy", "Predict"),
  chainOfThought: op("dspy", "ChainOfThought"),
  /** `config.tools`: tool names from the consumer's registry; `config.maxIters`. */
  react: op("dspy", "ReAct"),
  /**
   * Embedding retrieval in the Python consumer: `"query -> passages: list[str]"` with `config.passages` (or
   * `config.corpus`, registered with the consumer), `config.embedder` (`dspex/test`, `dspex/offline` or a
   * LiteLLM embedding model) and `config.k`.
   */
  retrieve: op("dspy", "Retrieve"),
};

export const native = {
  retrieve: op("native", "retrieve"),
  transform: op("native", "transform"),
  template: op("native", "template"),
  validate: op("native", "validate"),
};

type SpecInput = z.input<typeof VariableSpec>;
type VariableConstraintInput = z.input<typeof VariableConstraint>;

/** A variable before it has a name: its spec, initial value and description. */
export interface VariableDraft {
  spec: SpecInput;
  initial: Json;
  description?: string;
}

/** The usual DSPy knobs as variables. */
export const v = {
  float: (min: number, max: number, initial: number, precision?: number): VariableDraft => ({
    spec: { kind: "float", min, max, ...(precision === undefined ? {} : { precision }) },
    initial,
  }),
  integer: (min: number, max: number, initial: number, step = 1): VariableDraft => ({
    spec: { kind: "integer", min, max, step },
    initial,
  }),
  choice: (choices: Json[], initial: Json, allowCustom = false): VariableDraft => ({
    spec: { kind: "choice", choices, allowCustom },
    initial,
  }),
  module: (choices: string[], initial = choices[0]!): VariableDraft => ({
    spec: { kind: "module", choices },
    initial,
  }),
  text: (initial: string, maxLength = 4000): VariableDraft => ({
    spec: { kind: "text", maxLength },
    initial,
  }),
  demos: (maxItems = 16, initial: Json[] = []): VariableDraft => ({
    spec: { kind: "demos", maxItems },
    initial,
  }),
  /**
   * DSPy's adapter for the stage's LM calls (`chat`, `json`): a share of executions tries the other choices
   * (stage config `adapterExploration`, default 0.1) and the adapter selector of `dspex processors` switches
   * to the one with fewer parse failures (or as few and faster).
   */
  adapter: (choices: ("chat" | "json")[] = ["chat", "json"], initial = choices[0]!): VariableDraft => ({
    spec: { kind: "choice", choices, allowCustom: false },
    initial,
  }),
  composite: (dependsOn: string[], compute: string): VariableDraft => ({
    spec: { kind: "composite", dependsOn, compute },
    initial: null,
  }),
  model: (models: string[], initial = models[0]!) => v.module(models, initial),
  temperature: (initial = 0.7, max = 2) => v.float(0, max, initial, 2),
  maxTokens: (initial = 512, max = 4096) => v.integer(1, max, initial),
  instructions: (initial = "") => v.text(initial),
};

export interface StageOptions {
  dependsOn?: string[];
  /** input field → `input.<field>` or `<stage>.<field>`; default: the same-named program input or upstream output. */
  bindings?: Record<string, string>;
  variables?: Record<string, VariableDraft>;
}

export class ProgramDefinitionError extends Error {
  constructor(
    readonly programId: string,
    message: string,
  ) {
    super(`program ${programId}: ${message}`);
    this.name = "ProgramDefinitionError";
  }
}

const declarations = (variables: Record<string, VariableDraft>): VariableDeclaration[] =>
  Object.entries(variables).map(([name, draft]) => ({
    name,
    spec: VariableSpec.parse(draft.spec),
    initial: draft.initial,
    ...(draft.description ? { description: draft.description } : {}),
  }));

/**
 * A fluent program declaration:
 * `program("triage").input("message: str").stage("classify", dspy.predict("message -> label"), {...}).build()`.
 */
export class ProgramBuilder<
  // biome-ignore lint/complexity/noBannedTypes: the empty object is where the intersections start
  Stages extends Record<string, Fields> = {},
  // biome-ignore lint/complexity/noBannedTypes: as above
  Outputs extends Fields = {},
  Last extends Fields = Fields,
> {
  private inputs: FieldSpec[] = [];
  private readonly stages: StageDefinition[] = [];
  private readonly outputs: Record<string, string> = {};
  private readonly variables: Record<string, VariableDraft> = {};
  private readonly constraints: VariableConstraintInput[] = [];
  private hints: OptimizationHints | undefined;
  private descriptionText = "";
  private versionNumber = 1;

  constructor(readonly programId: string) {}

  version(version: number): this {
    this.versionNumber = version;
    return this;
  }

  description(text: string): this {
    this.descriptionText = text;
    return this;
  }

  /** Program inputs, written like a signature's input side: `question: str, k?: int = 3`. */
  input(fields: string): this {
    this.inputs = [...this.inputs, ...signature(`${fields} -> __output`).spec.inputs];
    return this;
  }

  variable(name: string, draft: VariableDraft): this {
    this.variables[name] = draft;
    return this;
  }

  stage<Id extends string, StageOutputs extends Fields>(
    id: Id,
    stageOp: StageOp<StageOutputs>,
    options: StageOptions = {},
  ): ProgramBuilder<Stages & { [K in Id]: StageOutputs }, Outputs, StageOutputs> {
    if (this.stages.some((s) => s.id === id)) this.fail(`stage "${id}" is declared twice`);
    this.stages.push({
      id,
      runtime: stageOp.runtime,
      module: stageOp.module,
      signature: stageOp.signature,
      dependsOn: options.dependsOn ?? [],
      bindings: options.bindings ?? {},
      config: stageOp.config,
      variables: declarations(options.variables ?? {}),
    });
    return this as never;
  }

  /**
   * How this program prefers to be optimized: `.hint({ optimizer: "simba", budget: { maxCalls: 800 },
   * priority: 1 })`. `dspex optimize` and the re-optimizer use them where they name none.
   */
  hint(hints: OptimizationHints): this {
    this.hints = OptimizationHints.parse({ ...this.hints, ...hints });
    return this;
  }

  /**
   * A rule between variables (`name` for the program's, `stage.name` for a stage's):
   * `.constraint("short answers from the small model", { when: { model: ["small"] }, require: { variable:
   * "answer.maxTokens", op: "<=", than: 256 } })`. Requests and optimizers must keep it.
   */
  constraint(name: string, rule: Omit<VariableConstraintInput, "name">): this {
    this.constraints.push({ name, ...rule });
    return this;
  }

  /** A program output: `name` ← `<stage>.<field>`. Without any, every output of the last stage. */
  output<Name extends string, From extends string>(
    name: Name,
    from: From,
  ): ProgramBuilder<Stages, Outputs & { [K in Name]: FieldAt<Stages, From> }, Last> {
    this.outputs[name] = from;
    return this as never;
  }

  private fail(message: string): never {
    throw new ProgramDefinitionError(this.programId, message);
  }

  /** Checks the whole program and returns its wire form, ready for a ProgramRegistered event. */
  build(): TypedProgram<Flat<keyof Outputs extends never ? Last : Outputs>> {
    if (this.inputs.length === 0) this.fail("declare its inputs with .input(...)");
    if (this.stages.length === 0) this.fail("declare at least one stage");
    const stages = this.stages.map((s) => ({
      ...s,
      dependsOn: [...s.dependsOn],
      bindings: { ...s.bindings },
    }));
    const stagesById = new Map(stages.map((s) => [s.id, s]));
    const inputNames = new Set(this.inputs.map((f) => f.name));
    const fieldOf = (ref: string, where: string) => {
      const [source, field, ...rest] = ref.split(".");
      if (!source || !field || rest.length > 0)
        this.fail(`${where}: "${ref}" must be input.<field> or <stage>.<field>`);
      if (source === "input") {
        if (!inputNames.has(field)) this.fail(`${where}: "${ref}" names no program input`);
        return;
      }
      const upstream = stagesById.get(source);
      if (!upstream) this.fail(`${where}: "${ref}" names no stage`);
      if (!upstream.signature.outputs.some((o) => o.name === field))
        this.fail(`${where}: stage "${source}" has no output "${field}"`);
      return source;
    };
    for (const stage of stages) {
      for (const dependency of stage.dependsOn)
        if (!stagesById.has(dependency))
          this.fail(`stage "${stage.id}" depends on unknown stage "${dependency}"`);
      const upstream = new Set(stage.dependsOn);
      for (const input of stage.signature.inputs) {
        const ref = stage.bindings[input.name];
        if (ref !== undefined) {
          const source = fieldOf(ref, `stage "${stage.id}" input ${input.name}`);
          if (source && !upstream.has(source)) {
            upstream.add(source);
            stage.dependsOn.push(source);
          }
          continue;
        }
        const fromStage = stage.dependsOn.find((d) =>
          stagesById.get(d)!.signature.outputs.some((o) => o.name === input.name),
        );
        if (fromStage) stage.bindings[input.name] = `${fromStage}.${input.name}`;
        else if (inputNames.has(input.name)) stage.bindings[input.name] = `input.${input.name}`;
        else if (!input.optional && input.default === undefined)
          this.fail(
            `stage "${stage.id}" input ${input.name} is bound to nothing: no program input or upstream output has that name`,
          );
      }
      if (stage.runtime === "dspy" && stage.module === "Retrieve") {
        const retrieve = retrieveConfigOf(stage.config);
        if (!("embedder" in retrieve)) this.fail(`stage "${stage.id}": ${retrieve.error}`);
      }
      try {
        variableSpace(stage.variables);
      } catch (error) {
        this.fail(`stage "${stage.id}": ${(error as Error).message}`);
      }
    }
    this.checkAcyclic(stagesById);
    const outputs = { ...this.outputs };
    if (Object.keys(outputs).length === 0) {
      const last = stages.at(-1)!;
      for (const field of last.signature.outputs) outputs[field.name] = `${last.id}.${field.name}`;
    }
    for (const [name, ref] of Object.entries(outputs)) fieldOf(ref, `output ${name}`);
    const variables = declarations(this.variables);
    try {
      variableSpace(variables);
    } catch (error) {
      this.fail((error as Error).message);
    }
    const constraints = this.constraints.map((c) => VariableConstraint.parse(c));
    const names = variableNamesOf({ variables, stages });
    for (const constraint of constraints)
      for (const name of constraintVariables(constraint))
        if (!names.has(name))
          this.fail(
            `constraint "${constraint.name}" names no variable "${name}" (known: ${[...names].join(", ")})`,
          );
    return ProgramDefinition.parse({
      programId: this.programId,
      version: this.versionNumber,
      description: this.descriptionText,
      inputs: this.inputs,
      outputs,
      stages,
      variables,
      constraints,
      ...(this.hints ? { hints: this.hints } : {}),
    });
  }

  private checkAcyclic(stages: ReadonlyMap<string, StageDefinition>): void {
    const state = new Map<string, "visiting" | "done">();
    const visit = (id: string, path: string[]) => {
      if (state.get(id) === "done") return;
      if (state.get(id) === "visiting")
        this.fail(`stage cycle: ${[...path.slice(path.indexOf(id)), id].join(" -> ")}`);
      state.set(id, "visiting");
      for (const dependency of stages.get(id)!.dependsOn) visit(dependency, [...path, id]);
      state.set(id, "done");
    };
    for (const id of stages.keys()) visit(id, []);
  }

  /** The ProgramRegistered event of this program. */
  registered(meta: { id?: string; occurredAt?: string; correlationId?: string } = {}) {
    const data = this.build();
    return ProgramRegistered.create({
      stream: `program-${data.programId}`,
      key: data.programId,
      ...meta,
      data,
    });
  }
}

export const program = (programId: string): ProgramBuilder => new ProgramBuilder(programId);
