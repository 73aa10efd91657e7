// Browser tests of the web consoles (tests/browser/README.md): one Playwright project per
// runtime of EDGEPLANE_RUNTIMES (default workerd,spin), in Debian's Chromium.
//
//   npx playwright test -c tests/browser/playwright.config.mjs [--project workerd] [-g signin]

import path from "node:path";
import { defineConfig } from "@playwright/test";
import { OUTPUT_ROOT, selectedRuntimes } from "./harness.mjs";

// Playwright's own browser download is not used: the system Chromium (scripts/install-tools.sh).
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

export default defineConfig({
  testDir: ".",
  testMatch: "**/*.spec.mjs",
  outputDir: path.join(OUTPUT_ROOT, "results"),
  globalSetup: "./global-setup.mjs",
  // Two cores, and each runtime's stack is its own worker: one at a time.
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: "list",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  use: {
    browserName: "chromium",
    headless: true,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    video: "off",
    launchOptions: {
      executablePath: CHROMIUM,
      args: [
        "--headless",
        // Runs as root in CI containers, where Chromium's sandbox cannot start.
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        // Nothing but the pages under test on the network.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  projects: selectedRuntimes().map((runtime) => ({ name: runtime, use: { runtime } })),
});
