#!/usr/bin/env node
// The web consoles' pages: server time and transfer per page, on each runtime.
//
//   node bench/console.mjs [--runs 40] [--runtimes workerd,spin]
//
// Starts the browser tests' stack (tests/browser/harness.mjs: the development IdP and Edgeplane),
// seeds a tenant with an owner, an app with a key and a flag, signs an operator and the owner in
// with Chromium (Debian's, as the tests), then requests each console page `--runs` times over
// one kept-alive connection with the session's cookie, one at a time, and prints per page the
// median and 95th percentile of the time to the whole answer (loopback: the server's time plus
// well under a millisecond), and the bytes of the page with its stylesheet and script.
// The page budget: server time p50 under 50 ms, transfer under 150 KB.

import { chromium } from "@playwright/test";
import http from "node:http";
import { performance } from "node:perf_hooks";
import { startStack, selectedRuntimes } from "../tests/browser/harness.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const RUNS = Number(opt("--runs", "40"));
const RUNTIMES = selectedRuntimes(opt("--runtimes", process.env.EDGEPLANE_RUNTIMES));
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const PASSWORD = "correct horse battery staple 42!";
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(url, cookie) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.get(url, { agent, headers: { Cookie: cookie } }, (res) => {
      let bytes = 0;
      res.on("data", (c) => (bytes += c.length));
      res.on("end", () => resolve({ status: res.statusCode, bytes, ms: performance.now() - started }));
    });
    req.on("error", reject);
  });
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function seed(stack) {
  const op = { Authorization: `Bearer ${await stack.operatorToken("operator")}`, "Content-Type": "application/json" };
  const post = async (path, body, method = "POST") => {
    const r = await fetch(stack.baseURL + path, { method, headers: op, body: JSON.stringify(body) });
    return r.json();
  };
  const app = await post("/v1/apps", { name: "Bench app", redirect_uris: ["https://app.example/cb"] });
  const t = await post("/v1/tenants", { name: "Bench Corp", domain: "bench", plan: "pro", owner_email: "owner@bench.example", apps: [app.id] });
  await post(`/v1/apps/${app.id}/keys`, { scopes: ["flags:read"], name: "bench" });
  await post(`/v1/tenants/${t.tenant.id}/flags/checkout`, {
    type: "boolean", value: false,
    rules: [{ conditions: [{ attribute: "email", op: "ends_with", values: ["@bench.example"] }], value: true }],
  }, "PUT");
  const token = new URL(t.invitation_link).searchParams.get("token");
  await fetch(stack.baseURL + "/v1/invitations/accept", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token, password: PASSWORD }),
  });
  return { tenant: t.tenant.id, app: app.id, owner: t.tenant.owner_user_id ?? t.owner_user_id };
}

/** Signs in with Chromium; returns the console cookie header. */
async function cookieOf(browser, stack, signIn) {
  const context = await browser.newContext({ baseURL: stack.baseURL });
  const page = await context.newPage();
  await signIn(page);
  const cookies = await context.cookies(stack.baseURL);
  await context.close();
  return cookies.map((c) => `${c.name}=${c.value}`).join("; ");
}

async function operatorSignIn(page, stack) {
  await page.goto("/console/signin");
  await page.getByRole("link", { name: "Sign in as operator or auditor" }).click();
  await page.getByLabel("Email").fill("operator@operators.example");
  await page.getByLabel("Password").fill(stack.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Tenants", level: 1 }).waitFor();
}

async function ownerSignIn(page) {
  await page.goto("/console/signin");
  await page.getByLabel("Organization").fill("bench");
  await page.getByRole("button", { name: "Continue to sign-in" }).click();
  await page.getByLabel("Email").fill("owner@bench.example");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Users", level: 1 }).waitFor();
}

async function measure(stack, cookie, pages, assets) {
  const rows = [];
  for (const path of pages) {
    const times = [];
    let bytes = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = await get(stack.baseURL + path, cookie);
      if (r.status !== 200) throw new Error(`${path}: status ${r.status}`);
      times.push(r.ms);
      bytes = r.bytes;
    }
    times.sort((a, b) => a - b);
    rows.push({ path, p50: pct(times, 50), p95: pct(times, 95), bytes: bytes + assets });
  }
  return rows;
}

async function run(runtime, browser) {
  const stack = await startStack(runtime);
  try {
    const ids = await seed(stack);
    const assets = (await get(stack.baseURL + "/console/assets/console.css", "")).bytes
      + (await get(stack.baseURL + "/console/assets/console.js", "")).bytes;
    const opCookie = await cookieOf(browser, stack, (p) => operatorSignIn(p, stack));
    const ownerCookie = await cookieOf(browser, stack, ownerSignIn);
    const operatorPages = ["/console/tenants", `/console/tenants/${ids.tenant}`, `/console/tenants/${ids.tenant}/flags/checkout`,
      "/console/plans", "/console/apps", `/console/apps/${ids.app}`, "/console/signing-keys", "/console/health",
      "/console/audit", `/console/audit/usage?tenant=${ids.tenant}`];
    const tenantPages = ["/console/tenant/users", "/console/tenant/security", "/console/tenant/sign-in-risk", "/console/tenant/subscription", "/console/tenant/flags"];
    const rows = [
      ...(await measure(stack, opCookie, operatorPages, assets)),
      ...(await measure(stack, ownerCookie, tenantPages, assets)),
    ];
    return rows;
  } finally {
    await stack.stop();
  }
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
try {
  for (const runtime of RUNTIMES) {
    const rows = await run(runtime, browser);
    console.log(`\n### ${runtime} (${RUNS} requests per page, one at a time)\n`);
    console.log("| page | p50 ms | p95 ms | transfer with CSS and JS (bytes) |");
    console.log("|---|---:|---:|---:|");
    for (const r of rows) {
      console.log(`| ${r.path.replace(/[0-9a-f-]{36}/g, "{id}")} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.bytes} |`);
    }
    const worst = Math.max(...rows.map((r) => r.p50));
    const heaviest = Math.max(...rows.map((r) => r.bytes));
    console.log(`\nslowest p50 ${worst.toFixed(1)} ms (budget 50), heaviest ${heaviest} bytes (budget 153600)`);
  }
} finally {
  await browser.close();
  agent.destroy();
}
