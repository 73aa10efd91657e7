// make dev-app: Edgeplane with make dev's seeded demo (scripts/dev.sh: wrangler dev on
// 127.0.0.1:${PORT:-8787}, the development IdP on ${IDP_PORT:-8788}), and the example Next.js
// app (examples/nextjs-app) in development mode beside it on 127.0.0.1:${APP_PORT:-3000},
// registered as the demo app's OpenID client: its redirect URIs, the flag it reads and its
// .env.local (git-ignored; the session secret is made once and kept). A `make dev` already
// running on PORT is used as it is. Ctrl-C stops what this started.

import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import {
  appEnv,
  FLAG_KEY,
  hasFlag,
  readEnvFile,
  registerAppUrls,
  setFlag,
  writeEnvFile,
} from "../examples/nextjs-app/scripts/edgeplane-setup.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const APP_DIR = path.join(ROOT, "examples", "nextjs-app");
const DEMO = path.join(ROOT, ".edgeplane", "demo.json");
const PORT = process.env.PORT || "8787";
const APP_PORT = process.env.APP_PORT || "3000";
const BASE = `http://127.0.0.1:${PORT}`;
const APP_URL = `http://127.0.0.1:${APP_PORT}`;
/** wrangler dev builds the worker if needed and applies migrations: minutes on a cold checkout. */
const EDGEPLANE_TIMEOUT_MS = 600_000;
const APP_TIMEOUT_MS = 180_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (line) => console.log(`==> ${line}`);

const children = [];
let stopping = false;

/** Stops what this script started, by PID, newest first, and exits with `code`. */
async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  for (const { child } of [...children].reverse()) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  }
  await Promise.all(children.map(({ exited }) => Promise.race([exited, sleep(15_000)])));
  process.exit(code);
}
process.on("SIGINT", () => stopAll(130));
process.on("SIGTERM", () => stopAll(143));

function start(name, command, args, options) {
  const child = spawn(command, args, { stdio: ["ignore", "inherit", "inherit"], ...options });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  children.push({ child, exited });
  exited.then((code) => {
    if (stopping) return;
    console.error(`${name} stopped (${code ?? "signal"}): stopping the rest`);
    stopAll(1);
  });
  return child;
}

async function answers(url) {
  try {
    const res = await fetch(url, { redirect: "manual" });
    await res.arrayBuffer();
    return res.status < 500;
  } catch {
    return false;
  }
}

function readDemo() {
  try {
    return JSON.parse(fs.readFileSync(DEMO, "utf8"));
  } catch {
    return undefined;
  }
}

/** The demo, once dev.sh seeded it (the owner's password is the last thing it records). */
async function edgeplane() {
  const running = readDemo();
  if ((await answers(`${BASE}/health`)) && running?.app_key && running.owner_password) {
    say(`using the Edgeplane already running on ${BASE} (make dev)`);
    return running;
  }
  // dev.sh writes the demo afresh; removing the old one tells when this run's is complete.
  fs.rmSync(DEMO, { force: true });
  say(`starting make dev's Edgeplane on ${BASE} (scripts/dev.sh)`);
  start("make dev (scripts/dev.sh)", path.join(ROOT, "scripts", "dev.sh"), [], { cwd: ROOT });
  const deadline = Date.now() + EDGEPLANE_TIMEOUT_MS;
  for (;;) {
    const demo = readDemo();
    if (demo?.app_key && demo.owner_password) return demo;
    if (Date.now() > deadline) throw new Error("make dev did not seed its demo in time (.edgeplane/wrangler.log)");
    await sleep(500);
  }
}

/** A fresh operator token of the demo operator (the one in demo.json may be a day old). */
function operatorToken() {
  return execFileSync(
    process.execPath,
    [
      "scripts/dev-issuer.mjs", "token",
      "--role", "operator",
      "--sub", "demo-operator",
      "--email", "operator@operators.example",
      "--ttl", "3600",
      "--env-file", ".edgeplane/dev-issuer.env",
    ],
    { cwd: ROOT, encoding: "utf8" },
  ).trim();
}

async function main() {
  if (await answers(APP_URL)) throw new Error(`something already answers on ${APP_URL}: set APP_PORT`);
  const demo = await edgeplane();
  const token = operatorToken();

  say(`registering ${APP_URL} as the demo app's client (redirect URIs, allowed origin)`);
  await registerAppUrls({ baseUrl: BASE, operatorToken: token, appId: demo.app_id, appUrl: APP_URL });
  if (!(await hasFlag({ baseUrl: BASE, operatorToken: token, tenantId: demo.tenant_id }))) {
    say(`creating the flag ${FLAG_KEY} (off) for the demo tenant`);
    await setFlag({ baseUrl: BASE, operatorToken: token, tenantId: demo.tenant_id, value: false });
  }
  const envFile = path.join(APP_DIR, ".env.local");
  // What a developer set by hand stays: the session secret (sessions survive a restart) and a
  // client secret (POST /v1/apps/{id}/client-secret, when the app is made confidential).
  const kept = readEnvFile(envFile);
  writeEnvFile(
    envFile,
    appEnv({
      baseUrl: BASE,
      appId: demo.app_id,
      apiKey: demo.app_key,
      appUrl: APP_URL,
      clientSecret: kept.EDGEPLANE_CLIENT_SECRET || "",
      sessionSecret: kept.SESSION_SECRET || randomBytes(32).toString("base64url"),
    }),
    "Written by make dev-app (scripts/dev-app.mjs) for the demo of make dev. Not committed.",
  );
  say(`wrote ${path.relative(ROOT, envFile)}`);

  say(`starting the example app (next dev) on ${APP_URL}`);
  start("next dev", process.execPath, [path.join(ROOT, "node_modules", "next", "dist", "bin", "next"), "dev", "--hostname", "127.0.0.1", "--port", APP_PORT], {
    cwd: APP_DIR,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
  });
  const deadline = Date.now() + APP_TIMEOUT_MS;
  while (!(await answers(APP_URL))) {
    if (Date.now() > deadline) throw new Error(`the app did not answer on ${APP_URL}`);
    await sleep(500);
  }

  console.log(`
The example app: ${APP_URL}
  "Sign in with Edgeplane" opens Edgeplane's login page: organization ${demo.tenant_domain},
  email ${demo.owner_email}, password ${demo.owner_password}

Switch its flag and reload ${APP_URL}/orders (within a second):
  OP=$(node scripts/dev-issuer.mjs token --role operator --sub demo-operator --env-file .edgeplane/dev-issuer.env)
  curl -s -X PUT ${BASE}/v1/tenants/${demo.tenant_id}/flags/${FLAG_KEY} -H "Authorization: Bearer $OP" \\
       -H 'Content-Type: application/json' -d '{"type":"boolean","value":true}'
The orders' billing events and audit rows:
  curl -s "${BASE}/v1/billing/events?tenant=${demo.tenant_id}" -H "X-API-Key: $(node -p 'require("./.edgeplane/demo.json").app_key')"
  curl -s "${BASE}/v1/audit/export.csv?tenant=${demo.tenant_id}&action=order.placed" \\
       -H "Authorization: Bearer $(node -p 'require("./.edgeplane/demo.json").auditor_token')"

Ctrl-C stops the app${children.length > 1 ? ", Edgeplane and the IdP" : ""}.`);
}

main().catch((e) => {
  console.error(`make dev-app: ${e.message}`);
  stopAll(1);
});
