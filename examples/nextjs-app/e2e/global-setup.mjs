// Before a run: the system Chromium is there and the app is built; the previous run's server
// logs are gone (target/browser/nextjs-app/logs: Edgeplane's, the IdP's, the app's).

import fs from "node:fs";
import path from "node:path";

import { APP_DIR, LOG_DIR } from "./app-server.mjs";

export default function globalSetup(config) {
  const executable = config.projects[0]?.use?.launchOptions?.executablePath;
  if (executable && !fs.existsSync(executable)) {
    throw new Error(`${executable} is missing: run scripts/install-tools.sh (Debian's chromium), or set CHROMIUM_PATH`);
  }
  if (!fs.existsSync(path.join(APP_DIR, ".next", "BUILD_ID"))) {
    throw new Error("examples/nextjs-app is not built: run `make example-nextjs` (or `npm run build` in the app)");
  }
  fs.rmSync(LOG_DIR, { recursive: true, force: true });
  fs.mkdirSync(LOG_DIR, { recursive: true });
}
