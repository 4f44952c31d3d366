import { spawn } from "node:child_process";
import { numberParam, type OptimizationSetup } from "../../processors/optimizers/setup.ts";
import type { JsonRecord, ProgramDefinition } from "../../streams/events/index.ts";
import { withPythonTools } from "./python-tools.ts";

/** What DSPy's own BootstrapFewShot did on a task (python -m dspex_tools.compare.bootstrap). */
export interface DspyBootstrapResult {
  optimizer: string;
  dspyVersion: string;
  baselineScore: number;
  devScore: number;
  /** Counted as dspex counts an optimization: baseline on the devset, the compile, the winner on the devset. */
  calls: { baseline: number; compile: number; final: number; total: number };
  demos: JsonRecord[];
  wallMs: number;
}

/**
 * The task as the comparison script reads it: the program's one DSPy stage (signature with its
 * instructions, LM config), the test LM's rules, the data, the metric and BootstrapFewShot's parameters
 * exactly as dspex's bootstrap reads them.
 */
export const bootstrapTask = (
  setup: OptimizationSetup,
  program: ProgramDefinition,
  testAnswers: readonly JsonRecord[],
): JsonRecord => {
  const stages = program.stages.filter((s) => s.runtime === "dspy");
  if (stages.length !== 1) throw new Error("the DSPy comparison runs programs with one DSPy stage");
  const stage = stages[0]!;
  const initial = (name: string) => stage.variables.find((v) => v.name === name)?.initial;
  const instructions = initial("instructions");
  const temperature = initial("temperature");
  return {
    signature: {
      ...stage.signature,
      instructions: typeof instructions === "string" ? instructions : stage.signature.instructions,
    },
    module: stage.module,
    lm: {
      model: String(stage.config.model ?? "dspex/test"),
      temperature: typeof temperature === "number" ? temperature : 0,
      maxTokens: typeof stage.config.maxTokens === "number" ? stage.config.maxTokens : 512,
    },
    testAnswers: [...testAnswers],
    trainset: setup.trainset,
    devset: setup.devset,
    metric: setup.metric,
    failureScore: setup.failureScore,
    params: {
      maxBootstrappedDemos: numberParam(setup, "maxBootstrappedDemos", 4),
      maxLabeledDemos: numberParam(setup, "maxLabeledDemos", 16),
      maxRounds: numberParam(setup, "maxRounds", 1),
      metricThreshold: numberParam(setup, "metricThreshold", 1),
    },
  } as unknown as JsonRecord;
};

/** Runs DSPy's BootstrapFewShot on the task with the consumers' Python; rejects with its stderr on failure. */
export const runDspyBootstrap = (python: string, task: JsonRecord): Promise<DspyBootstrapResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(python, ["-m", "dspex_tools.compare.bootstrap"], {
      env: withPythonTools({ ...process.env, LITELLM_LOCAL_MODEL_COST_MAP: "True" }),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    child.stderr.on("data", (chunk) => {
      err += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0)
        return reject(new Error(`dspex_tools.compare.bootstrap exited ${code}: ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(out) as DspyBootstrapResult);
      } catch {
        reject(new Error(`dspex_tools.compare.bootstrap printed no JSON: ${out.slice(0, 500)}`));
      }
    });
    child.stdin.end(JSON.stringify(task));
  });
