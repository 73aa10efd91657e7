#!/usr/bin/env node
// The README's screenshots of the operator console (docs/screenshots/), taken from a running
// `make dev`: signs in as the demo operator at the development IdP with the credentials in
// .edgeplane/demo.json, then saves the tenant list and the demo tenant's page at 1280x800.
// Debian's Chromium (CHROMIUM_PATH, default /usr/bin/chromium), as the browser tests use.
//
//   make dev                      # in another terminal
//   node scripts/console-screenshots.mjs [--out docs/screenshots]

import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { chromium } from "@playwright/test";

const outIndex = process.argv.indexOf("--out");
const out = outIndex > 0 ? process.argv[outIndex + 1] : "docs/screenshots";
const demo = JSON.parse(readFileSync(".edgeplane/demo.json", "utf8"));
if (!demo.console_url || !demo.idp_password) {
  console.error("console-screenshots: .edgeplane/demo.json has no console_url: run `make dev` first");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  // The browser tests' flags (tests/browser/playwright.config.mjs): root in containers, no GPU.
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(demo.console_url);
  const entry = "Sign in as operator or auditor";
  await page.getByRole("link", { name: entry }).or(page.getByRole("button", { name: entry })).click();
  await page.waitForURL((url) => url.origin === new URL(demo.idp_url).origin);
  await page.getByLabel("Email").fill(demo.operator_email);
  await page.getByLabel("Password").fill(demo.idp_password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((url) => url.origin === new URL(demo.base_url).origin && url.pathname.startsWith("/console/"));

  mkdirSync(out, { recursive: true });
  await page.goto(new URL("/console/tenants", demo.base_url).href);
  const tenant = page.getByRole("link", { name: "Demo Corp" });
  await tenant.waitFor();
  await page.screenshot({ path: path.join(out, "console-tenants.png") });
  await tenant.click();
  await page.getByRole("heading", { name: "Demo Corp" }).waitFor();
  await page.screenshot({ path: path.join(out, "console-tenant.png") });
  console.log(`console-screenshots: wrote ${out}/console-tenants.png and ${out}/console-tenant.png`);
} finally {
  await browser.close();
}
