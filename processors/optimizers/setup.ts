import { programVariables } from "../../programs/registry.ts";
import { breaches, variableNamesOf } from "../../programs/variables/constraints.ts";
import { jsonEqual } from "../../programs/variables/types.ts";
import type {
  EventOf,
  Example,
  JsonRecord,
  MetricRef,
  OptimizerName,
  ProgramDefinition,
  VariableConstraint,
  VariableDeclaration,
} from "../../streams/events/index.ts";
import { configurationOf, stagesFor, type VariableValue } from "../pipeline/planner.ts";

export interface TargetVariable {
  variableId: string;
  name: string;
  stageId?: string;
  declaration: VariableDeclaration;
}

/** A DSPy stage seen as a predictor: its variables, and how its fields map to the program's. */
export interface Predictor {
  stageId: string;
  /** stage input field → program input field (only inputs bound straight to the program's). */
  inputs: Readonly<Record<string, string>>;
  /** stage output field → program output field. */
  outputs: Readonly<Record<string, string>>;
  instructions: string;
  demosVariable?: string;
  instructionsVariable?: string;
  temperatureVariable?: string;
}

/** Everything an optimizer needs to know, settled once from the request and the program. */
export interface OptimizationSetup {
  optimizationId: string;
  programId: string;
  optimizer: OptimizerName;
  seed: number;
  params: JsonRecord;
  trainset: readonly Example[];
  devset: readonly Example[];
  metric: MetricRef;
  failureScore: number;
  concurrency: number;
  budget: { maxTrials?: number; maxCalls?: number };
  /** The program outputs its evaluations compute (stages none of them needs are left out); all by default. */
  outputs?: readonly string[];
  /** The variables this optimization may change (and leases). */
  variables: readonly TargetVariable[];
  predictors: readonly Predictor[];
  /** LM calls one example costs (one per DSPy stage). */
  callsPerExample: number;
  /** The program's constraints: no configuration that breaks one is tried. */
  constraints: readonly VariableConstraint[];
  /** Every variable's value before the optimization (the registry's, else initial), by its name in the program. */
  values: Readonly<Record<string, unknown>>;
}

const stageIdOf = (programId: string, variableId: string): string | undefined => {
  const parts = variableId.slice(programId.length + 1).split(".");
  return parts.length > 1 ? parts[0] : undefined;
};

const matches = (wanted: readonly string[], variable: TargetVariable): boolean =>
  wanted.length === 0 ||
  wanted.some(
    (w) =>
      w === variable.variableId ||
      w === variable.name ||
      (variable.stageId !== undefined && w === `${variable.stageId}.${variable.name}`),
  );

const predictorsOf = (program: ProgramDefinition, targets: readonly TargetVariable[]): Predictor[] => {
  const all = programVariables(program).map(({ variableId, declaration }) => ({
    variableId,
    declaration,
    stageId: stageIdOf(program.programId, variableId),
  }));
  const programOutputOf = (stageId: string, field: string) =>
    Object.entries(program.outputs).find(([, source]) => source === `${stageId}.${field}`)?.[0];
  return program.stages
    .filter((stage) => stage.runtime === "dspy")
    .map((stage) => {
      const own = (
        name: string,
        among: readonly { variableId: string; stageId?: string; declaration: VariableDeclaration }[],
      ) =>
        among.find((v) => v.declaration.name === name && v.stageId === stage.id)?.variableId ??
        (program.stages.filter((s) => s.runtime === "dspy").length === 1
          ? among.find((v) => v.declaration.name === name && v.stageId === undefined)?.variableId
          : undefined);
      const inputs: Record<string, string> = {};
      for (const field of stage.signature.inputs) {
        const source = stage.bindings[field.name] ?? `input.${field.name}`;
        if (source.startsWith("input.")) inputs[field.name] = source.slice("input.".length);
      }
      const outputs: Record<string, string> = {};
      for (const field of stage.signature.outputs) {
        const name = programOutputOf(stage.id, field.name);
        if (name) outputs[field.name] = name;
      }
      return {
        stageId: stage.id,
        inputs,
        outputs,
        instructions: stage.signature.instructions,
        demosVariable: own("demos", targets),
        instructionsVariable: own("instructions", targets),
        temperatureVariable: own("temperature", all),
      };
    });
};

/** The setup of an optimization request against a registered program. */
export const setupOf = (
  request: EventOf<"OptimizationRequested">["data"],
  program: ProgramDefinition,
  options: {
    failureScore?: number;
    concurrency?: number;
    /** The registry's values, by variable id (initial values where absent). */
    registry?: Readonly<Record<string, VariableValue>>;
  } = {},
): OptimizationSetup => {
  const variables = programVariables(program)
    .map(({ variableId, declaration }) => ({
      variableId,
      name: declaration.name,
      stageId: stageIdOf(program.programId, variableId),
      declaration,
    }))
    .filter((v) => v.declaration.spec.kind !== "composite" && matches(request.variables, v));
  const predictors = predictorsOf(program, variables);
  const needed = request.outputs ? stagesFor(program, request.outputs) : undefined;
  const dspyStages = program.stages.filter(
    (s) => s.runtime === "dspy" && (!needed?.ok || needed.stages.has(s.id)),
  ).length;
  return {
    optimizationId: request.optimizationId,
    programId: request.programId,
    optimizer: request.optimizer ?? program.hints?.optimizer ?? "bootstrap",
    seed: request.seed,
    params: request.params,
    trainset: request.trainset,
    devset: request.devset,
    metric: request.metric,
    failureScore: options.failureScore ?? 0,
    concurrency: options.concurrency ?? 4,
    budget: {
      maxTrials: request.budget.maxTrials ?? program.hints?.budget?.maxTrials,
      maxCalls: request.budget.maxCalls ?? program.hints?.budget?.maxCalls,
    },
    outputs: request.outputs,
    variables,
    predictors,
    callsPerExample: Math.max(1, dspyStages),
    constraints: program.constraints,
    values: valuesOf(program, options.registry ?? {}),
  };
};

const valuesOf = (program: ProgramDefinition, registry: Readonly<Record<string, VariableValue>>) => {
  const lookup = configurationOf(program, registry, {});
  return Object.fromEntries([...variableNamesOf(program)].map((name) => [name, lookup(name)]));
};

/** The constraints a candidate configuration (overrides by variable id) breaks, with the reasons. */
export const constraintBreaches = (setup: OptimizationSetup, overrides: JsonRecord): string[] =>
  breaches(setup.constraints, (name) => {
    const id = `${setup.programId}.${name}`;
    return id in overrides ? overrides[id] : setup.values[name];
  });

/** A numeric parameter of the request, or its default. */
export const numberParam = (
  setup: Pick<OptimizationSetup, "params">,
  name: string,
  fallback: number,
): number => {
  const value = setup.params[name];
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
};

export const stringsParam = (setup: Pick<OptimizationSetup, "params">, name: string): string[] => {
  const value = setup.params[name];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
};

/** One predictor's demo from values named as the program names them (example inputs, outputs or labels). */
export const demoFor = (
  predictor: Predictor,
  inputs: JsonRecord,
  outputs: JsonRecord,
): JsonRecord | undefined => {
  const demo: JsonRecord = {};
  for (const [field, source] of Object.entries(predictor.inputs)) {
    if (inputs[source] === undefined) return undefined;
    demo[field] = inputs[source]!;
  }
  const outputFields = Object.entries(predictor.outputs);
  if (outputFields.length === 0) return undefined;
  for (const [field, source] of outputFields) {
    if (outputs[source] === undefined) return undefined;
    demo[field] = outputs[source]!;
  }
  return demo;
};

/** Whether `example` is one of the demos `overrides` show a predictor (compared on the demo's input fields). */
const shownAsDemo = (setup: OptimizationSetup, overrides: JsonRecord, example: Example): boolean =>
  setup.predictors.some((predictor) => {
    const demos = predictor.demosVariable ? overrides[predictor.demosVariable] : undefined;
    if (!Array.isArray(demos)) return false;
    const fields = Object.entries(predictor.inputs);
    return demos.some(
      (demo) =>
        typeof demo === "object" &&
        demo !== null &&
        !Array.isArray(demo) &&
        fields.every(([field, source]) => jsonEqual(demo[field], example.inputs[source])),
    );
  });

/**
 * The examples a candidate configuration is scored on, by `params.searchOn`: the devset (default), as
 * DSPy's random-search bootstrap picks its candidates; `"train"`, the trainset the demos come from (a
 * candidate is then scored partly on its own demos); or `"dev+train"`, the devset and every training
 * example the candidate does not show as a demo — about twice the examples, so less luck in the pick.
 */
export const selectionExamples = (setup: OptimizationSetup, overrides: JsonRecord): readonly Example[] => {
  switch (setup.params.searchOn) {
    case "train":
      return setup.trainset;
    case "dev+train":
      return [...setup.devset, ...setup.trainset.filter((e) => !shownAsDemo(setup, overrides, e))];
    default:
      return setup.devset;
  }
};

/** Example runs scoring one candidate costs at most. */
export const selectionSize = (setup: OptimizationSetup): number => selectionExamples(setup, {}).length;
