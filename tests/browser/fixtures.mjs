// Playwright fixtures of the browser tests. Import `test` and `expect` from here, not from
// @playwright/test:
//
//   edgeplane  (worker scope) the stack of harness.mjs for this project's runtime, started once
//              per test worker: { runtime, baseURL, idp: { issuer, origin, clientId,
//              clientSecret }, cronSecret, envFile, logDir, operatorToken(role) }
//   edgeplaneHost  (worker option) the host name of Edgeplane's origin, 127.0.0.1 unless a file
//              says `test.use({ edgeplaneHost: "localhost" })` (passkeys: browsers refuse
//              WebAuthn on an IP address); such a file's tests get a worker and a stack of their own
//   accounts   the IdP's demo accounts with this run's password: operator, auditor, nobody, each
//              { email, password, sub, roles }
//   origins    an OriginRecorder over the test's context (origins.mjs); at the end of a test that
//              otherwise passed it checks that only Edgeplane's origin was requested, except
//              inside `origins.during("sign-in", edgeplane.idp.origin, async () => ...)`
//   saveScreenshot(name) saves target/browser/screenshots/<runtime>-<name>.png
//   baseURL    Edgeplane's origin, so `page.goto("/console/")` works
//
// Playwright tears a test worker down after a failed test, so the next test gets a fresh stack.

import fs from "node:fs";
import path from "node:path";
import { test as base, expect } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { DEMO_ACCOUNTS, OUTPUT_ROOT, startStack } from "./harness.mjs";
import { OriginRecorder } from "./origins.mjs";

export { expect };

/** Where tests save screenshots meant to be looked at (not only on failure). */
export const SCREENSHOT_DIR = path.join(OUTPUT_ROOT, "screenshots");

export const test = base.extend({
  // Set per project in playwright.config.mjs.
  runtime: ["workerd", { option: true, scope: "worker" }],
  edgeplaneHost: ["127.0.0.1", { option: true, scope: "worker" }],

  edgeplane: [
    async ({ runtime, edgeplaneHost }, use) => {
      const stack = await startStack(runtime, { host: edgeplaneHost });
      try {
        await use(stack);
      } finally {
        await stack.stop();
      }
    },
    // A debug-built Spin test host takes minutes to compile the component.
    { scope: "worker", timeout: 300_000 },
  ],

  baseURL: async ({ edgeplane }, use) => {
    await use(edgeplane.baseURL);
  },

  accounts: async ({ edgeplane }, use) => {
    const withPassword = (a) => ({ ...a, roles: [...a.roles], password: edgeplane.password });
    await use({
      operator: withPassword(DEMO_ACCOUNTS.operator),
      auditor: withPassword(DEMO_ACCOUNTS.auditor),
      nobody: withPassword(DEMO_ACCOUNTS.nobody),
    });
  },

  origins: async ({ context, edgeplane }, use, testInfo) => {
    const recorder = new OriginRecorder(context, edgeplane.baseURL);
    await use(recorder);
    // After a failure the first error is the one worth reading.
    if (testInfo.status === testInfo.expectedStatus) recorder.expectNoOtherOrigin();
  },

  saveScreenshot: async ({ page, runtime }, use, testInfo) => {
    fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await use(async (name) => {
      const file = path.join(SCREENSHOT_DIR, `${runtime}-${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      await testInfo.attach(name, { path: file, contentType: "image/png" });
      return file;
    });
  },
});

/**
 * Fails on any axe-core violation of WCAG 2.x A/AA on the page as it is now; `exclude` takes
 * selectors of regions outside the check.
 */
export async function expectAccessible(page, { exclude = [] } = {}) {
  let builder = new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]);
  for (const selector of exclude) builder = builder.exclude(selector);
  const { violations } = await builder.analyze();
  const summary = violations.map(
    (v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`,
  );
  expect(summary, `accessibility violations on ${page.url()}`).toEqual([]);
}
