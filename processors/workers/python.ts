import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

const repoRoot = new URL("../..", import.meta.url).pathname;

/** The Python that runs the consumers: the configured one, DSPEX_PYTHON, else the repo's `.venv` (infra/python/setup.sh). */
export const defaultPython = (configured?: string): string =>
  configured ?? process.env.DSPEX_PYTHON ?? join(repoRoot, ".venv/bin/python");

/** That Python, if it exists and can import dspex_consumers; else why not and what to run. */
export const findPython = (configured?: string): { python?: string; reason?: string } => {
  const python = defaultPython(configured);
  if (!existsSync(python))
    return { reason: `no Python venv at ${python}: run \`bash infra/python/setup.sh\`` };
  const probe = spawnSync(python, ["-c", "import dspex_consumers"], { encoding: "utf8" });
  if (probe.status !== 0)
    return { reason: `${python} cannot import dspex_consumers: ${probe.stderr.trim()}` };
  return { python };
};
