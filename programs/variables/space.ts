import type { VariableDeclaration, VariableSpec } from "../../streams/events/variables.ts";
import { type Random, seededRandom } from "./random.ts";
import { cardinalityOf, checkDeclaration, isSearchable, sampleValue, validateValue } from "./types.ts";

export type Configuration = Record<string, unknown>;

/** Computes a composite variable from the values of the variables it depends on (by name). */
export type ComputeFunction = (inputs: Readonly<Record<string, unknown>>) => unknown;
export type ComputeRegistry = Readonly<Record<string, ComputeFunction>>;

const numbers = (inputs: Readonly<Record<string, unknown>>): number[] =>
  Object.values(inputs).map((v) => (typeof v === "number" ? v : Number.NaN));

/** Compute functions every space knows; pass more in `computes`. */
export const builtinComputes: ComputeRegistry = {
  sum: (inputs) => numbers(inputs).reduce((a, b) => a + b, 0),
  product: (inputs) => numbers(inputs).reduce((a, b) => a * b, 1),
  min: (inputs) => Math.min(...numbers(inputs)),
  max: (inputs) => Math.max(...numbers(inputs)),
  mean: (inputs) => numbers(inputs).reduce((a, b) => a + b, 0) / Object.keys(inputs).length,
  join: (inputs) => Object.values(inputs).map(String).join("\n"),
};

/** A rule over a whole configuration: `true` when it holds, else the reason it does not. */
export interface CrossConstraint {
  name: string;
  check(configuration: Readonly<Configuration>): true | string;
}

export class VariableSpaceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VariableSpaceError";
  }
}

export class SamplingExhaustedError extends Error {
  constructor(
    readonly attempts: number,
    readonly rejections: Readonly<Record<string, number>>,
  ) {
    const why = Object.entries(rejections)
      .sort((a, b) => b[1] - a[1])
      .map(([name, count]) => `${name} rejected ${count}`)
      .join(", ");
    super(`no configuration satisfied the constraints in ${attempts} attempts (${why})`);
    this.name = "SamplingExhaustedError";
  }
}

export type ConfigurationCheck = { ok: true; configuration: Configuration } | { ok: false; errors: string[] };

export interface Dimensionality {
  /** Variables a search varies (float, integer, choice, module). */
  searchable: number;
  continuous: number;
  discrete: number;
  /** Set or learned, not searched: text, demos. */
  fixed: number;
  computed: number;
  /** Distinct configurations of the searchable variables; Infinity when any is continuous. */
  combinations: number;
}

export interface SpaceOptions {
  computes?: ComputeRegistry;
  constraints?: readonly CrossConstraint[];
}

/** Dependency order of composites, or the unknown name / the cycle that prevents one. */
const orderOf = (declarations: readonly VariableDeclaration[]): string[] => {
  const byName = new Map(declarations.map((d) => [d.name, d]));
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === "done") return;
    if (state.get(name) === "visiting") {
      const cycle = [...path.slice(path.indexOf(name)), name];
      throw new VariableSpaceError(`dependency cycle: ${cycle.join(" -> ")}`);
    }
    state.set(name, "visiting");
    const spec = byName.get(name)!.spec;
    if (spec.kind === "composite") {
      for (const dependency of spec.dependsOn) {
        if (!byName.has(dependency))
          throw new VariableSpaceError(`${name} depends on unknown variable "${dependency}"`);
        visit(dependency, [...path, name]);
      }
    }
    state.set(name, "done");
    order.push(name);
  };
  for (const d of declarations) visit(d.name, []);
  return order;
};

/** The variables of a program (or stage) together: dependencies, validation, sampling, size. */
export class VariableSpace {
  readonly order: readonly string[];
  private readonly byName: ReadonlyMap<string, VariableDeclaration>;
  private readonly computes: ComputeRegistry;
  private readonly constraints: readonly CrossConstraint[];

  constructor(
    readonly declarations: readonly VariableDeclaration[],
    options: SpaceOptions = {},
  ) {
    const names = new Set<string>();
    for (const d of declarations) {
      if (names.has(d.name)) throw new VariableSpaceError(`variable "${d.name}" is declared twice`);
      names.add(d.name);
    }
    this.computes = { ...builtinComputes, ...options.computes };
    this.constraints = options.constraints ?? [];
    for (const d of declarations) {
      if (d.spec.kind === "composite" && !(d.spec.compute in this.computes))
        throw new VariableSpaceError(`${d.name} uses unknown compute function "${d.spec.compute}"`);
      const check = checkDeclaration(d.name, d.spec, d.initial);
      if (!check.ok) throw new VariableSpaceError(`invalid declaration: ${check.reason}`);
    }
    this.byName = new Map(declarations.map((d) => [d.name, d]));
    this.order = orderOf(declarations);
  }

  spec(name: string): VariableSpec | undefined {
    return this.byName.get(name)?.spec;
  }

  dimensionality(): Dimensionality {
    const specs = this.declarations.map((d) => d.spec);
    const searchable = specs.filter(isSearchable);
    const continuous = searchable.filter((s) => cardinalityOf(s) === Number.POSITIVE_INFINITY).length;
    return {
      searchable: searchable.length,
      continuous,
      discrete: searchable.length - continuous,
      fixed: specs.filter((s) => s.kind === "text" || s.kind === "demos").length,
      computed: specs.filter((s) => s.kind === "composite").length,
      combinations: searchable.reduce((n, s) => n * cardinalityOf(s), 1),
    };
  }

  private computeOne(spec: Extract<VariableSpec, { kind: "composite" }>, values: Readonly<Configuration>) {
    return this.computes[spec.compute]!(Object.fromEntries(spec.dependsOn.map((d) => [d, values[d]])));
  }

  /** `values` (already valid, every variable but the composites) with the composites computed. */
  withComposites(values: Readonly<Configuration>): Configuration {
    const configuration: Configuration = { ...values };
    for (const name of this.order) {
      const { spec } = this.byName.get(name)!;
      if (spec.kind === "composite") configuration[name] = this.computeOne(spec, configuration);
    }
    return configuration;
  }

  /** Initial values, composites computed. */
  defaults(): Configuration {
    const result = this.check({});
    if (!result.ok)
      throw new VariableSpaceError(`the initial values break the space: ${result.errors.join("; ")}`);
    return result.configuration;
  }

  /**
   * Completes `values` with initial values, computes composites in dependency order, and checks every
   * value and every cross-variable constraint. Setting a composite is an error, not an override.
   */
  check(values: Readonly<Configuration>): ConfigurationCheck {
    const errors: string[] = [];
    for (const name of Object.keys(values)) {
      const spec = this.byName.get(name)?.spec;
      if (!spec) errors.push(`unknown variable "${name}"`);
      else if (spec.kind === "composite")
        errors.push(`${name} is computed from ${spec.dependsOn.join(", ")} and cannot be set`);
    }
    const configuration: Configuration = {};
    for (const name of this.order) {
      const { spec, initial } = this.byName.get(name)!;
      if (spec.kind === "composite") {
        configuration[name] = this.computeOne(spec, configuration);
        continue;
      }
      const value = name in values ? values[name] : initial;
      const check = validateValue(name, spec, value);
      if (!check.ok) errors.push(check.reason);
      configuration[name] = value;
    }
    if (errors.length > 0) return { ok: false, errors };
    for (const constraint of this.constraints) {
      const verdict = constraint.check(configuration);
      if (verdict !== true) errors.push(`${constraint.name}: ${verdict}`);
    }
    return errors.length > 0 ? { ok: false, errors } : { ok: true, configuration };
  }

  /**
   * A random configuration that satisfies every constraint: searchable variables are drawn, the rest keep
   * their initial values (or `fixed`). Gives up after `maxAttempts` draws with SamplingExhaustedError.
   */
  sample(
    random: Random | number,
    options: { maxAttempts?: number; fixed?: Configuration } = {},
  ): Configuration {
    const draw = typeof random === "number" ? seededRandom(random) : random;
    const maxAttempts = options.maxAttempts ?? 100;
    const rejections: Record<string, number> = {};
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const values: Configuration = { ...options.fixed };
      for (const { name, spec, initial } of this.declarations) {
        if (spec.kind === "composite" || name in values) continue;
        values[name] = sampleValue(spec, draw, initial);
      }
      const result = this.check(values);
      if (result.ok) return result.configuration;
      for (const error of result.errors) {
        const rule = error.split(":")[0]!;
        rejections[rule] = (rejections[rule] ?? 0) + 1;
      }
    }
    throw new SamplingExhaustedError(maxAttempts, rejections);
  }
}

export const variableSpace = (
  declarations: readonly VariableDeclaration[],
  options?: SpaceOptions,
): VariableSpace => new VariableSpace(declarations, options);
