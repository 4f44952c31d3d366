import { execFileSync } from "node:child_process";

/** Debian's Chromium for the browser tests (infra/chromium.sh installs it), or why there is none. */
export const findChromium = (): { path: string } | { reason: string } => {
  const configured = process.env.DSPEX_CHROMIUM;
  if (configured) return { path: configured };
  try {
    const path = execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
    if (path) return { path };
  } catch {}
  return {
    reason:
      "no chromium on PATH: run `bash infra/chromium.sh` (apt-get install chromium), or set DSPEX_CHROMIUM",
  };
};
