import { fileURLToPath } from "node:url";

/** Where the checkout's Python tools live (dspex_tools: benchmarks, comparisons with DSPy); not installed. */
const toolsRoot = fileURLToPath(new URL("../../python-consumers", import.meta.url));

/** `env` with the tools importable: `python -m dspex_tools.<module>` runs from any folder. */
export const withPythonTools = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
  ...env,
  PYTHONPATH: [toolsRoot, env.PYTHONPATH].filter(Boolean).join(":"),
});
