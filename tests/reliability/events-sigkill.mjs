#!/usr/bin/env node
// Reliability check of the event pipeline (FR-BILL-001: nothing acknowledged is ever lost):
// ingests EVENTS billing events in batches of BATCH with CONCURRENCY senders that retry each
// batch until it is acknowledged, while the runtime (workerd through tests/harness/workerd.mjs,
// its whole process group) is killed with SIGKILL at random points and restarted on the same
// state. Archive flushes run throughout (the Durable Object alarms, every second here, and the
// scheduled job). Afterwards every event must be exported exactly once and the chain must verify.
//
//   node tests/reliability/events-sigkill.mjs      after `make worker`; knobs: EVENTS (100000),
//                                                  BATCH (100), CONCURRENCY (4), KILLS (8),
//                                                  SEED, MAX_SECONDS (900)
//
// Servers listen on 127.0.0.1 only and are stopped by their process group id; the temp dir is
// removed. Exit status 0 only if the check holds.

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const num = (name, dflt) => Number(process.env[name] ?? dflt);
const EVENTS = num("EVENTS", 100000);
const BATCH = num("BATCH", 100);
const CONC = num("CONCURRENCY", 4);
const KILLS = num("KILLS", 8);
const MAX_SECONDS = num("MAX_SECONDS", 900);
let seed = num("SEED", Date.now() % 1000003);
const SEED = seed;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-reliability-"));
const state = path.join(tmp, "state");
const log = (s = "") => process.stdout.write(`${s}\n`);
// Pacing timers keep the process alive (while the server is down they are all that is
// pending); the time limits raced against a process do not.
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const limit = (ms) => new Promise((r) => setTimeout(r, ms).unref());

let server; // { child, base }
let vars;

async function start() {
  const args = ["tests/harness/workerd.mjs", "--state", state, "--max-seconds", String(MAX_SECONDS)];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}=${v}`);
  const errFd = fs.openSync(path.join(tmp, "server.log"), "a");
  // Its own process group, so SIGKILL reaches workerd as well as the harness.
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["pipe", "pipe", errFd], detached: true });
  fs.closeSync(errFd);
  child.exitedP = new Promise((r) => child.once("exit", r));
  const ready = new Promise((r) => readline.createInterface({ input: child.stdout }).once("line", r));
  const line = await Promise.race([ready, child.exitedP.then(() => null), limit(60_000).then(() => null)]);
  if (!line) throw new Error(`the harness did not start:\n${fs.readFileSync(path.join(tmp, "server.log"), "utf8").slice(-2000)}`);
  server = { child, base: JSON.parse(line).url };
}

async function kill() {
  const s = server;
  server = undefined;
  if (!s) return;
  try { process.kill(-s.child.pid, "SIGKILL"); } catch { /* already gone */ }
  await Promise.race([s.child.exitedP, limit(10_000)]);
}

async function stop() {
  const s = server;
  server = undefined;
  if (!s || s.child.exitCode !== null) return;
  s.child.stdin.end();
  if ((await Promise.race([s.child.exitedP, limit(15_000).then(() => "timeout")])) === "timeout") {
    try { process.kill(-s.child.pid, "SIGKILL"); } catch { /* gone */ }
  }
}

async function call(method, route, { bearer, apiKey, body } = {}) {
  if (!server) throw new Error("server down");
  const headers = { "content-type": "application/json" };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (apiKey) headers["x-api-key"] = apiKey;
  const res = await fetch(server.base + route, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers };
}

async function must(method, route, opts, status = 200) {
  const r = await call(method, route, opts);
  if (r.status !== status) throw new Error(`${method} ${route}: HTTP ${r.status} ${r.text.slice(0, 500)}`);
  return r;
}

function devIssuer() {
  const envFile = path.join(tmp, "issuer.env");
  const issuer = (...a) => execFileSync(process.execPath, ["scripts/dev-issuer.mjs", ...a], { cwd: ROOT }).toString();
  fs.writeFileSync(envFile, issuer("keygen"));
  const v = Object.fromEntries(fs.readFileSync(envFile, "utf8").split("\n")
    .filter((l) => l.includes("=") && !l.startsWith("OPERATOR_DEV_PRIVATE_JWK"))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).replace(/^'|'$/g, "")]));
  const token = (role) => issuer("token", "--role", role, "--sub", "reliability", "--ttl", String(MAX_SECONDS + 120), "--env-file", envFile).trim();
  return { vars: v, operator: token("operator"), auditor: token("auditor") };
}

async function main() {
  const deadline = setTimeout(() => { console.error("reliability: over MAX_SECONDS"); kill().finally(() => process.exit(1)); }, MAX_SECONDS * 1000);
  deadline.unref();
  if (!fs.existsSync(path.join(ROOT, "worker/build/index.js"))) throw new Error("worker/build is missing: run `make worker`");
  const issuer = devIssuer();
  vars = { ...issuer.vars, CRON_SECRET: crypto.randomUUID(), EVENT_FLUSH_DELAY_MS: "1000" };
  log(`reliability: ${EVENTS} events in batches of ${BATCH}, ${CONC} senders, ${KILLS} SIGKILLs, seed ${SEED}`);
  await start();
  const app = JSON.parse((await must("POST", "/v1/apps", { bearer: issuer.operator, body: { name: "Reliability" } }, 201)).text);
  const tenant = JSON.parse((await must("POST", "/v1/tenants", { bearer: issuer.operator, body: { name: "Reliability", domain: "reliability", plan: "pro", owner_email: "o@reliability.example", apps: [app.id] } }, 201)).text).tenant;
  const key = JSON.parse((await must("POST", `/v1/apps/${app.id}/keys`, { bearer: issuer.operator, body: { scopes: ["bill:write", "bill:read"], tenant_id: tenant.id } }, 201)).text).secret;

  const batches = Math.ceil(EVENTS / BATCH);
  let next = 0;
  let acked = 0;
  let retries = 0;
  let done = false;
  const t0 = performance.now();
  const sender = async () => {
    while (next < batches) {
      const b = next++;
      const events = [];
      for (let j = b * BATCH; j < Math.min(EVENTS, (b + 1) * BATCH); j++) {
        events.push({ id: `r-${j}`, type: "api.call", quantity: 1, timestamp: "2026-01-01T00:00:00Z" });
      }
      for (;;) {
        try {
          const r = await call("POST", "/v1/billing/events", { apiKey: key, body: { events } });
          if (r.status === 202) { acked += events.length; break; }
          if (r.status < 500) throw new Error(`refused: HTTP ${r.status} ${r.text.slice(0, 300)}`);
        } catch (e) {
          if (String(e.message).startsWith("refused")) throw e;
        }
        retries++;
        await sleep(50);
      }
    }
  };
  let killed = 0;
  const killer = async () => {
    for (let k = 0; k < KILLS && !done; k++) {
      // Each kill falls inside the ingestion: at a jittered point of the k-th of KILLS equal
      // shares of the acknowledged events, so a fast run cannot finish before the kills.
      const at = (EVENTS * (k + 0.25 + random() * 0.5)) / KILLS;
      while (!done && acked < at) await sleep(2);
      if (done) break;
      await kill();
      killed++;
      await sleep(random() * 500);
      await start();
      // Sometimes run the scheduled flush as well.
      if (random() < 0.5) await call("POST", "/internal/scheduled", { bearer: vars.CRON_SECRET, body: { cron: "reliability" } }).catch(() => {});
    }
  };
  const kills = killer();
  await Promise.all(Array.from({ length: CONC }, sender));
  done = true;
  await kills;
  log(`ingested: ${acked} events acknowledged in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${killed} SIGKILLs during ingestion, ${retries} retried requests`);
  if (killed < KILLS) throw new Error(`FAILED: only ${killed} of ${KILLS} SIGKILLs happened during the ingestion`);

  // A clean restart, a flush, then the check.
  await stop();
  await start();
  await must("POST", "/internal/scheduled", { bearer: vars.CRON_SECRET, body: { cron: "reliability" } });
  const seen = new Map();
  let cursor = null;
  let pages = 0;
  do {
    const r = await must("GET", `/v1/billing/events?limit=1000${cursor ? `&cursor=${cursor}` : ""}`, { apiKey: key });
    const page = JSON.parse(r.text);
    for (const e of page.items) seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
    cursor = page.next_cursor;
    pages++;
  } while (cursor);
  const missing = [];
  for (let j = 0; j < EVENTS; j++) if (seen.get(`r-${j}`) !== 1) missing.push(`r-${j}:${seen.get(`r-${j}`) ?? 0}`);
  const extra = [...seen.keys()].filter((id) => !/^r-\d+$/.test(id));
  const verify = JSON.parse((await must("GET", `/v1/audit/verify?tenant=${tenant.id}&kind=billing`, { bearer: issuer.auditor })).text);
  log(`exported: ${seen.size} distinct events in ${pages} pages; chain: ${verify.ok ? "ok" : JSON.stringify(verify.first_break)} (${verify.records} records, ${verify.archives} archives)`);
  await stop();
  if (missing.length || extra.length || !verify.ok) {
    throw new Error(`FAILED: ${missing.length} events not exported exactly once (${missing.slice(0, 10).join(", ")}), ${extra.length} unexpected`);
  }
  log("reliability: every acknowledged event exported exactly once");
}

main()
  .catch((e) => { console.error(e.stack ?? String(e)); process.exitCode = 1; })
  .finally(async () => { await kill().catch(() => {}); fs.rmSync(tmp, { recursive: true, force: true }); });
