import { spawnSync } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { join } from "node:path";

const repoRoot = new URL("../..", import.meta.url).pathname;

/** The Python that runs the consumers: the configured one, DSPEX_PYTHON, else the repo's `.venv` (infra/python/setup.sh). */
export const defaultPython = (configured?: string): string =>
  configured ?? process.env.DSPEX_PYTHON ?? join(repoRoot, ".venv/bin/python");

const ownPackage = realpathSync(join(repoRoot, "python-consumers/dspex_consumers"));

/**
 * That Python, if it exists and imports dspex_consumers from this checkout; else why not and what to run.
 * (Each checkout has a venv of its own; a DSPEX_PYTHON of another checkout would run that checkout's code.)
 */
export const findPython = (configured?: string): { python?: string; reason?: string } => {
  const python = defaultPython(configured);
  if (!existsSync(python))
    return { reason: `no Python venv at ${python}: run \`bash infra/python/setup.sh\`` };
  const probe = spawnSync(
    python,
    ["-c", "import os, dspex_consumers; print(os.path.realpath(os.path.dirname(dspex_consumers.__file__)))"],
    { encoding: "utf8" },
  );
  if (probe.status !== 0)
    return {
      reason: `${python} cannot import dspex_consumers (run \`bash infra/python/setup.sh\`): ${probe.stderr.trim()}`,
    };
  const imported = probe.stdout.trim();
  if (imported !== ownPackage)
    return {
      reason: `${python} imports dspex_consumers from ${imported}, another checkout: run \`bash infra/python/setup.sh\` here to point it at ${ownPackage}`,
    };
  return { python };
};
