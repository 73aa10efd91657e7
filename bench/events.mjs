#!/usr/bin/env node
// Event pipeline benchmark: ingestion throughput with a durable ack (batches of 1 and
// of 100 events), then the auditor's CSV export rate from archives plus tail, on the built
// worker in workerd (tests/harness/workerd.mjs). A benchmark, not a test: it prints figures for
// bench/RESULTS.md and fails only on errors.
//
//   node bench/events.mjs     after `make worker`; knobs are environment variables:
//                             SINGLES (requests of 1 event), BATCHES (requests of 100 events),
//                             CONCURRENCY, CSV_EVENTS, MAX_SECONDS
//
// Servers listen on 127.0.0.1 only and are stopped by PID; the run's temp dir is removed.

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import * as lib from "./lib.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const num = (name, dflt) => Number(process.env[name] ?? dflt);
const SINGLES = num("SINGLES", 1000);
const BATCHES = num("BATCHES", 300);
const CONC = num("CONCURRENCY", 10);
const CSV_EVENTS = num("CSV_EVENTS", 50000);
const MAX_SECONDS = num("MAX_SECONDS", 600);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-events-bench-"));
const log = (s = "") => process.stdout.write(`${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms).unref());
let server;

async function startServer(vars) {
  const args = ["tests/harness/workerd.mjs", "--state", path.join(tmp, "state"), "--max-seconds", String(MAX_SECONDS)];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}=${v}`);
  const errFd = fs.openSync(path.join(tmp, "server.log"), "a");
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["pipe", "pipe", errFd] });
  fs.closeSync(errFd);
  server = child;
  child.exitedP = new Promise((r) => child.once("exit", r));
  const ready = new Promise((r) => readline.createInterface({ input: child.stdout }).once("line", r));
  const line = await Promise.race([ready, child.exitedP.then(() => null), sleep(60_000).then(() => null)]);
  if (!line) throw new Error("the harness did not print its ready line within 60 s");
  return JSON.parse(line).url;
}

async function stopServer() {
  const child = server;
  if (!child || child.exitCode !== null) return;
  child.stdin.end();
  for (const signal of [null, "SIGTERM", "SIGKILL"]) {
    if (signal) try { process.kill(child.pid, signal); } catch { break; }
    if ((await Promise.race([child.exitedP, sleep(15_000).then(() => "timeout")])) !== "timeout") break;
  }
  server = undefined;
}

function devIssuer() {
  const d = lib.devIssuer(tmp, MAX_SECONDS);
  return { vars: d.vars, operator: d.token, auditor: d.tokenFor("auditor") };
}

/** `pid` and every process below it (from /proc). */
function descendants(pid) {
  const children = new Map();
  for (const d of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const ppid = Number(fs.readFileSync(`/proc/${d}/stat`, "utf8").split(") ")[1].split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch { /* gone */ }
  }
  const out = [];
  const walk = (p) => { out.push(p); for (const c of children.get(p) ?? []) walk(c); };
  walk(pid);
  return out;
}

let base;
async function call(method, route, { bearer, apiKey, body } = {}) {
  const headers = { "content-type": "application/json" };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (apiKey) headers["x-api-key"] = apiKey;
  const res = await fetch(base + route, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const buf = Buffer.from(await res.arrayBuffer());
  if (!res.ok) throw new Error(`${method} ${route}: HTTP ${res.status}\n${buf.toString().slice(0, 1000)}`);
  return { res, buf };
}

const pct = (sorted, p) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];

/** `n` requests, `CONC` in flight; returns seconds, p50, p99. */
async function load(n, send) {
  const times = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONC }, async () => {
    while (next < n) {
      const i = next++;
      const s = performance.now();
      await send(i);
      times.push(performance.now() - s);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  times.sort((a, b) => a - b);
  return { secs, p50: pct(times, 50), p99: pct(times, 99) };
}

const billing = (id) => ({ id, type: "api.call", quantity: 1, timestamp: "2026-01-01T00:00:00Z" });
const audit = (id) => ({ id, timestamp: "2026-01-01T00:00:00Z", actor_id: "user:1", type: "doc.read", resource_id: "doc:1", outcome: "success", ip: "192.0.2.1" });

async function main() {
  setTimeout(() => { console.error("events bench: over MAX_SECONDS"); stopServer().finally(() => process.exit(1)); }, MAX_SECONDS * 1000).unref();
  if (!fs.existsSync(path.join(ROOT, "worker/build/index.js"))) throw new Error("worker/build is missing: run `make worker`");
  const workerd = execFileSync(path.join(ROOT, "node_modules/.bin/workerd"), ["--version"]).toString().trim().split(/\s+/)[1];
  log(`machine: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}; node ${process.version}; workerd ${workerd}`);
  log(`date:    ${new Date().toISOString().slice(0, 16)}Z; load average ${os.loadavg()[0].toFixed(2)}`);
  const issuer = devIssuer();
  issuer.vars.CRON_SECRET = crypto.randomUUID();
  base = await startServer(issuer.vars);

  const app = JSON.parse((await call("POST", "/v1/apps", { bearer: issuer.operator, body: { name: "Bench" } })).buf);
  const tenant = JSON.parse((await call("POST", "/v1/tenants", { bearer: issuer.operator, body: { name: "Bench", domain: "bench-events", plan: "pro", owner_email: "o@bench.example", apps: [app.id] } })).buf).tenant;
  const key = JSON.parse((await call("POST", `/v1/apps/${app.id}/keys`, { bearer: issuer.operator, body: { scopes: ["bill:write", "bill:read", "log:write"], tenant_id: tenant.id } })).buf).secret;

  log(`\n==> ingestion, ${CONC} requests in flight, 202 only once stored in the stream's Durable Object`);
  log("batch  requests  events/s  req/s  p50 ms  p99 ms");
  for (const [size, n] of [[1, SINGLES], [100, BATCHES]]) {
    await load(20, (i) => call("POST", "/v1/billing/events", { apiKey: key, body: { events: Array.from({ length: size }, (_, j) => billing(`w${size}-${i}-${j}`)) } }));
    const r = await load(n, (i) => call("POST", "/v1/billing/events", { apiKey: key, body: { events: Array.from({ length: size }, (_, j) => billing(`b${size}-${i}-${j}`)) } }));
    log(`${String(size).padStart(5)}  ${String(n).padStart(8)}  ${String(Math.round((n * size) / r.secs)).padStart(8)}  ${String(Math.round(n / r.secs)).padStart(5)}  ${r.p50.toFixed(1).padStart(6)}  ${r.p99.toFixed(1).padStart(6)}`);
  }

  log(`\n==> CSV export of ${CSV_EVENTS} audit events (archives of 1,000 plus a tail)`);
  const t0 = performance.now();
  const batches = Math.ceil(CSV_EVENTS / 1000);
  await load(batches, (i) => call("POST", "/v1/audit/events", { apiKey: key, body: { events: Array.from({ length: Math.min(1000, CSV_EVENTS - i * 1000) }, (_, j) => audit(`a-${i}-${j}`)) } }));
  log(`ingested in ${((performance.now() - t0) / 1000).toFixed(1)} s (batches of 1,000)`);
  // Archive everything now (the cron's flush) rather than wait for the streams' alarms.
  const f = performance.now();
  const report = JSON.parse((await call("POST", "/internal/scheduled", { bearer: issuer.vars.CRON_SECRET, body: { cron: "bench" } })).buf);
  const flushed = report.jobs.find((j) => j.name === "events.flush")?.affected;
  log(`flushed ${flushed} events to archive objects in ${((performance.now() - f) / 1000).toFixed(1)} s`);
  // A few events stay in the tail.
  await call("POST", "/v1/audit/events", { apiKey: key, body: { events: Array.from({ length: 100 }, (_, j) => audit(`tail-${j}`)) } });
  for (const limit of [10000, 50000]) {
    let cursor = null;
    let rows = 0;
    let bytes = 0;
    let pages = 0;
    const s = performance.now();
    do {
      const q = `/v1/audit/export.csv?tenant=${tenant.id}&limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`;
      const { res, buf } = await call("GET", q, { bearer: issuer.auditor });
      rows += buf.toString().split("\r\n").length - 2;
      bytes += buf.length;
      pages += 1;
      cursor = res.headers.get("x-next-cursor");
    } while (cursor);
    const secs = (performance.now() - s) / 1000;
    log(`limit ${limit}: ${rows} rows in ${pages} pages, ${secs.toFixed(2)} s, ${Math.round(rows / secs)} rows/s, ${(bytes / 2 ** 20).toFixed(1)} MiB`);
  }
  // Peak resident memory of the runtime's processes (workerd and the harness) over the run.
  for (const pid of descendants(server.pid)) {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const name = status.match(/^Name:\s+(.*)$/m)?.[1];
    const hwm = status.match(/^VmHWM:\s+(\d+)/m)?.[1];
    if (hwm) log(`peak RSS ${name} (pid ${pid}): ${Math.round(Number(hwm) / 1024)} MiB`);
  }
}

main()
  .catch((e) => {
    console.error(e.stack ?? e);
    const serverLog = path.join(tmp, "server.log");
    if (fs.existsSync(serverLog)) console.error(`--- server log (last lines)\n${fs.readFileSync(serverLog, "utf8").split("\n").slice(-30).join("\n")}`);
    process.exitCode = 1;
  })
  .finally(async () => { await stopServer().catch(() => {}); fs.rmSync(tmp, { recursive: true, force: true }); });
