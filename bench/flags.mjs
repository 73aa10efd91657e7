#!/usr/bin/env node
// Flag delivery benchmark (FR-FLAG-002): OFREP bulk evaluation of 5 and of 100 flags on the
// built worker in workerd (tests/harness/workerd.mjs, no wrangler proxy), and, in the same run,
// with the same load generator (wrk) and the same flag set, Unleash Edge in offline mode with a
// bootstrap file (its frontend API, which evaluates every flag for a context like OFREP bulk).
// A benchmark, not a test: it prints figures for bench/RESULTS.md and fails only on errors.
//
//   node bench/flags.mjs        after `make worker`; knobs: DURATION (wrk -d, default 10s),
//                               CONNECTIONS (default "1,32"), UNLEASH_EDGE (path of the
//                               unleash-edge binary; without one the peer is skipped and says so)
//
// Flag set, per index i: i%4 = 0 a static boolean, 1 a static string, 2 a boolean targeted on
// the email domain, 3 a boolean rolled out to 20% by the targeting key. Every request evaluates
// the whole set for one context ({targetingKey, email}).
// Servers listen on 127.0.0.1 only and are stopped by their own PID; the temp dir is removed.

import { execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { devIssuer } from "./lib.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DURATION = process.env.DURATION ?? "10s";
const CONNECTIONS = (process.env.CONNECTIONS ?? "1,32").split(",").map(Number);
const SIZES = [5, 100];
const MAX_SECONDS = 900;
const UNLEASH = process.env.UNLEASH_EDGE ?? "";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-flags-bench-"));
const children = [];
const log = (s = "") => process.stdout.write(`${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms).unref());

function cleanup() {
  for (const c of children) if (c.exitCode === null) try { process.kill(c.pid, "SIGTERM"); } catch {}
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => process.exit(1));
setTimeout(() => { log("bench/flags: time limit reached"); process.exit(1); }, MAX_SECONDS * 1000).unref();

// ---- the flag set ---------------------------------------------------------------------------

const CONTEXT = { targetingKey: "user-42", email: "ana@shop.example" };

function edgeplaneFlag(i) {
  switch (i % 4) {
    case 0: return { type: "boolean", value: true };
    case 1: return { type: "string", value: `value-${i}` };
    case 2: return { type: "boolean", value: false, rules: [{ name: "staff", conditions: [{ attribute: "email", op: "ends_with", values: ["@shop.example"] }], value: true }] };
    default: return { type: "boolean", value: false, rules: [{ rollout: { variants: [{ variant: "on", value: true, weight: 20 }, { variant: "off", value: false, weight: 80 }] } }] };
  }
}

function unleashFeature(name, i) {
  const base = { name, type: "release", project: "default", enabled: true, stale: false, impressionData: false, variants: [] };
  switch (i % 4) {
    case 0: return { ...base, strategies: [{ name: "default", parameters: {}, constraints: [] }] };
    case 1: return { ...base, strategies: [{ name: "default", parameters: {}, constraints: [] }],
      variants: [{ name: "v", weight: 1000, weightType: "variable", stickiness: "default", payload: { type: "string", value: `value-${i}` } }] };
    case 2: return { ...base, strategies: [{ name: "default", parameters: {}, constraints: [{ contextName: "email", operator: "STR_ENDS_WITH", values: ["@shop.example"], inverted: false, caseInsensitive: false }] }] };
    default: return { ...base, strategies: [{ name: "flexibleRollout", parameters: { rollout: "20", stickiness: "userId", groupId: name }, constraints: [] }] };
  }
}

const flagName = (size, i) => `f${size}-${String(i).padStart(3, "0")}`;

// ---- servers --------------------------------------------------------------------------------

async function startWorker(vars) {
  const args = ["tests/harness/workerd.mjs", "--state", path.join(tmp, "state"), "--max-seconds", String(MAX_SECONDS)];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}=${v}`);
  const errFd = fs.openSync(path.join(tmp, "worker.log"), "a");
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["pipe", "pipe", errFd] });
  fs.closeSync(errFd);
  children.push(child);
  const line = await Promise.race([
    new Promise((r) => readline.createInterface({ input: child.stdout }).once("line", r)),
    sleep(60_000).then(() => null),
  ]);
  if (!line) throw new Error(`the harness did not start:\n${fs.readFileSync(path.join(tmp, "worker.log"), "utf8")}`);
  return JSON.parse(line).url;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function startUnleash(features, token) {
  const file = path.join(tmp, "unleash-features.json");
  fs.writeFileSync(file, JSON.stringify({ version: 2, features, segments: [], query: {} }));
  const port = await freePort();
  const errFd = fs.openSync(path.join(tmp, "unleash.log"), "a");
  const child = spawn(UNLEASH, ["--interface", "127.0.0.1", "--port", String(port), "offline",
    "--bootstrap-file", file, "--client-tokens", token, "--frontend-tokens", token],
  { stdio: ["ignore", errFd, errFd], env: { ...process.env, RUST_LOG: "warn" } });
  fs.closeSync(errFd);
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`${url}/internal-backstage/health`)).ok) return { url, child }; } catch {}
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`unleash-edge did not start:\n${fs.readFileSync(path.join(tmp, "unleash.log"), "utf8")}`);
}

// ---- load -----------------------------------------------------------------------------------

/** wrk POSTing `body` with `headers`; returns {rps, p50, p99, errors}. */
function wrk(url, headers, body, connections) {
  const script = path.join(tmp, "post.lua");
  const lines = [`wrk.method = "POST"`, `wrk.body = ${JSON.stringify(body)}`,
    ...Object.entries(headers).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)];
  fs.writeFileSync(script, lines.join("\n") + "\n");
  const threads = Math.min(2, connections);
  const out = execFileSync("wrk", [`-t${threads}`, `-c${connections}`, `-d${DURATION}`, "--latency", "-s", script, url]).toString();
  const grab = (re) => (out.match(re) ?? [])[1] ?? "?";
  const errors = (out.match(/(Non-2xx or 3xx responses: \d+|Socket errors:[^\n]*)/g) ?? []).join("; ");
  return { rps: Number(grab(/Requests\/sec:\s+([\d.]+)/)), p50: grab(/\n\s+50%\s+(\S+)/), p99: grab(/\n\s+99%\s+(\S+)/), errors };
}

async function once(url, headers, body) {
  // A pooled connection may have been closed while wrk blocked the event loop: retry once.
  const res = await fetch(url, { method: "POST", headers, body })
    .catch(() => sleep(200).then(() => fetch(url, { method: "POST", headers, body })));
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${url}: HTTP ${res.status}: ${text.slice(0, 500)}`);
  return text;
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  if (spawnSync("wrk", ["--version"]).error) throw new Error("wrk is missing (apt-get install wrk)");
  const { vars, token: op } = devIssuer(tmp, MAX_SECONDS);
  const base = await startWorker(vars);
  const api = async (method, route, body) => {
    const res = await fetch(base + route, { method, headers: { authorization: `Bearer ${op}`, "content-type": "application/json" }, body: body && JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${route}: HTTP ${res.status}: ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : null;
  };

  const app = await api("POST", "/v1/apps", { name: `Bench ${Date.now()}` });
  const keys = {};
  const features = [];
  for (const size of SIZES) {
    const t = await api("POST", "/v1/tenants", { name: `Bench ${size}`, domain: `bench-${size}-${Date.now()}`, plan: "free", owner_email: `owner@bench${size}.example`, apps: [app.id] });
    const tenant = t.tenant.id;
    // The plan defaults of a fresh database are none: the tenant holds exactly `size` flags.
    for (let i = 0; i < size; i++) await api("PUT", `/v1/tenants/${tenant}/flags/${flagName(size, i)}`, edgeplaneFlag(i));
    keys[size] = (await api("POST", `/v1/apps/${app.id}/keys`, { scopes: ["flags:read"], tenant_id: tenant })).secret;
    for (let i = 0; i < size; i++) features.push(unleashFeature(flagName(size, i), i));
  }

  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, node ${process.version}`;
  log(`machine: ${machine}`);
  log(`date:    ${new Date().toISOString().slice(0, 16)}Z`);
  log(`load:    wrk, ${DURATION} per cell, POST with one context ${JSON.stringify(CONTEXT)}`);
  log("");

  const rows = [];
  // The runtime's floor on this machine: GET /health does no storage and no auth.
  for (const c of CONNECTIONS) {
    const out = execFileSync("wrk", [`-t${Math.min(2, c)}`, `-c${c}`, `-d${DURATION}`, "--latency", `${base}/health`]).toString();
    const grab = (re) => (out.match(re) ?? [])[1] ?? "?";
    rows.push({ server: "edgeplane GET /health", size: "-", c, bytes: 15, rps: Number(grab(/Requests\/sec:\s+([\d.]+)/)), p50: grab(/\n\s+50%\s+(\S+)/), p99: grab(/\n\s+99%\s+(\S+)/), errors: "" });
  }
  const ofrepBody = JSON.stringify({ context: CONTEXT });
  for (const size of SIZES) {
    const headers = { "content-type": "application/json", "x-api-key": keys[size] };
    const sample = await once(`${base}/ofrep/v1/evaluate/flags`, headers, ofrepBody);
    const n = JSON.parse(sample).flags.length;
    if (n !== size) throw new Error(`expected ${size} flags, got ${n}`);
    for (const c of CONNECTIONS) rows.push({ server: "edgeplane (workerd)", size, c, bytes: sample.length, ...wrk(`${base}/ofrep/v1/evaluate/flags`, headers, ofrepBody, c) });
  }

  if (UNLEASH && fs.existsSync(UNLEASH)) {
    const token = "*:development.benchmarktoken0123456789";
    const listed = spawnSync("cargo", ["install", "--list"]).stdout?.toString() ?? "";
    const version = process.env.UNLEASH_EDGE_VERSION ?? (listed.match(/^unleash-edge (v[\d.]+)/m) ?? [])[1] ?? "(version unknown)";
    log(`peer:    unleash-edge ${version}, offline mode, a bootstrap file per flag set, frontend API (POST /api/frontend)`);
    const ubody = JSON.stringify({ context: { userId: CONTEXT.targetingKey, properties: { email: CONTEXT.email } } });
    for (const size of SIZES) {
      // One Edge per flag set, so each request evaluates exactly that set.
      const set = features.filter((f) => f.name.startsWith(`f${size}-`));
      const { url, child } = await startUnleash(set, token);
      const headers = { "content-type": "application/json", authorization: token };
      const sample = await once(`${url}/api/frontend`, headers, ubody);
      // The frontend API lists only the toggles enabled for the context.
      const n = JSON.parse(sample).toggles.length;
      for (const c of CONNECTIONS) rows.push({ server: "unleash-edge (offline)", size: `${size} (${n} on)`, c, bytes: sample.length, ...wrk(`${url}/api/frontend`, headers, ubody, c) });
      process.kill(child.pid, "SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
    }
  } else {
    log("peer:    unleash-edge skipped (set UNLEASH_EDGE to its binary: cargo install unleash-edge)");
  }

  log("");
  log(`${"server".padEnd(24)} ${"flags".padStart(10)} ${"conns".padStart(5)} ${"req/s".padStart(10)} ${"p50".padStart(9)} ${"p99".padStart(9)} ${"bytes".padStart(7)}  errors`);
  for (const r of rows) {
    log(`${r.server.padEnd(24)} ${String(r.size).padStart(10)} ${String(r.c).padStart(5)} ${r.rps.toFixed(0).padStart(10)} ${r.p50.padStart(9)} ${r.p99.padStart(9)} ${String(r.bytes).padStart(7)}  ${r.errors || "0"}`);
  }
}

main().then(() => process.exit(0), (e) => {
  log(`bench/flags: ${e.stack ?? e}`);
  for (const f of ["worker.log", "unleash.log"]) {
    const p = path.join(tmp, f);
    if (fs.existsSync(p)) log(`--- ${f} (last lines)\n${fs.readFileSync(p, "utf8").split("\n").slice(-30).join("\n")}`);
  }
  process.exit(1);
});
