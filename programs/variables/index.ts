export { deriveVariables } from "./derive.ts";
export { type Random, randomInt, seededRandom } from "./random.ts";
export {
  builtinComputes,
  type ComputeFunction,
  type ComputeRegistry,
  type Configuration,
  type ConfigurationCheck,
  type CrossConstraint,
  type Dimensionality,
  SamplingExhaustedError,
  type SpaceOptions,
  VariableSpace,
  VariableSpaceError,
  variableSpace,
} from "./space.ts";
export {
  type Check,
  cardinalityOf,
  checkDeclaration,
  checkSpec,
  isSearchable,
  jsonEqual,
  moduleKinds,
  nativeOps,
  sampleValue,
  validateValue,
  variableSpec,
} from "./types.ts";
