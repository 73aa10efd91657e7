// Before a run: the system Chromium is there, and the previous run's server logs and
// screenshots are gone (Playwright empties its own outputDir, target/browser/results).

import fs from "node:fs";
import path from "node:path";
import { OUTPUT_ROOT, RUNTIMES } from "./harness.mjs";

export default function globalSetup(config) {
  const executable = config.projects[0]?.use?.launchOptions?.executablePath;
  if (executable && !fs.existsSync(executable)) {
    throw new Error(`${executable} is missing: run scripts/install-tools.sh (Debian's chromium), or set CHROMIUM_PATH`);
  }
  for (const dir of [...RUNTIMES, "screenshots"]) {
    fs.rmSync(path.join(OUTPUT_ROOT, dir), { recursive: true, force: true });
  }
}
