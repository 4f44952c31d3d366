import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

const root = new URL("../..", import.meta.url).pathname;

/** The venv of infra/python/setup.sh, if it is there and has dspex_consumers; else why not. */
export const findPython = (): { python?: string; reason?: string } => {
  const python = process.env.DSPEX_PYTHON ?? join(root, ".venv/bin/python");
  if (!existsSync(python))
    return { reason: `no Python venv at ${python}: run \`bash infra/python/setup.sh\`` };
  const probe = spawnSync(python, ["-c", "import dspex_consumers"], { encoding: "utf8" });
  if (probe.status !== 0)
    return { reason: `${python} cannot import dspex_consumers: ${probe.stderr.trim()}` };
  return { python };
};
