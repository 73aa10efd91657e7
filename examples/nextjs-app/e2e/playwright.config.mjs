// The example app's acceptance test (app.spec.mjs) in Chromium: Debian's, as the consoles'
// browser tests (tests/browser/playwright.config.mjs, whose browser settings this reuses).
//
//   make example-nextjs     # builds the client and the app, then runs this
//   npx playwright test -c examples/nextjs-app/e2e/playwright.config.mjs
//
// workerd only: the app talks to Edgeplane over HTTP, the same routes on either runtime, and
// both runtimes' OpenID provider, OFREP and events are held to one contract by the Rust suite and
// the consoles' browser tests; a Spin project would add minutes (the debug test host compiles
// the component) to check the app, not the runtime.

import path from "node:path";
import { defineConfig } from "@playwright/test";

import consoles from "../../../tests/browser/playwright.config.mjs";
import { OUTPUT_ROOT } from "../../../tests/browser/harness.mjs";

export default defineConfig({
  testDir: ".",
  testMatch: "**/*.spec.mjs",
  outputDir: path.join(OUTPUT_ROOT, "nextjs-app", "results"),
  globalSetup: "./global-setup.mjs",
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: "list",
  timeout: 90_000,
  expect: { timeout: 10_000 },
  use: consoles.use,
  projects: [{ name: "workerd", use: { runtime: "workerd" } }],
});
