#!/usr/bin/env node
// Edge hot paths against the runtime's floor, in one run (`make bench-edge`). A benchmark, not a
// test: it prints tables for bench/RESULTS.md and fails only on errors.
//
// Workers table: the release worker (worker/build) in workerd through Miniflare
// (tests/harness/workerd.mjs --floor), which in the same instance also serves a JS hello-world
// worker (bench/floor-worker.js) and, when built (make bench-edge builds them), two Rust floors
// built by worker-build like Edgeplane: the workers-rs hello-world (bench/worker-floor), what a
// Rust Worker pays per request, and the least a wasm-bindgen `fetch` can do
// (bench/worker-floor-bare), what the crossing into wasm costs; each with a ratio column of its
// own. Two more rows come from a JS worker that does a hot route's I/O and nothing else
// (bench/floor-io-worker.js: /health's, and OFREP's with a POST body), what the runtime's
// Request/Response API costs those routes by itself. All are loaded on their own
// sockets, past Miniflare's entry worker (a hop Workers does not have; its cost is printed once,
// on GET /health).
// Spin table: the Spin build (target/wasm32-wasip2/release/edgeplane_spin.wasm) in the Spin test
// host (tests/spin-host), against Spin's hello-world component (bench/spin-floor) in a second
// host, one host at a time.
//
// Per route: CPU per request = CPU time of the server's whole process tree (utime + stime of the
// process and every descendant, from /proc/<pid>/stat, before and after) / requests served, and
// its ratio to the floor's; req/s, p50 and p99 from wrk at each connection count. On Spin also
// p50 and p99 with `Connection: close` (a connection per request), beside keep-alive.
// CPU per request is the steadier figure on a shared machine, but it too rises with the
// machine's load: compare rows of one run, not runs.
//
//   node bench/edge.mjs    after `make worker spin spin-host` and the floor component (make
//                          bench-edge builds them). Knobs: DURATION (wrk -d per route and
//                          connection count, default 5s), CONNECTIONS (default "1,32"),
//                          TABLES (default "workers,spin"), SPIN_TEST_HOST (default
//                          ~/.cache/edgeplane/spin-host-target/debug/spin-test-host), EDGEPLANE_SPIN_WASM
//                          (default target/wasm32-wasip2/release/edgeplane_spin.wasm),
//                          MAX_SECONDS (900), WORKER_SCRIPT (another build of the worker,
//                          e.g. a copy of worker/build/index.js from before a change, for A/B).
//   PROFILE="OFREP bulk, 5" node bench/edge.mjs
//                          instead of the tables: a V8 CPU profile (bench/profile.mjs) of each
//                          Workers row whose name contains PROFILE ("floor", "rust-floor" and
//                          "bare-floor" for the floors, "io-floor" for the I/O rows), as
//                          self time per function per request, Wasm functions by name. The
//                          profiler's sampling inflates every figure; compare rows of one run.
//   SPIN_PERF="OFREP|introspect" TABLES=spin node bench/edge.mjs
//                          besides the Spin table: `perf record -g` of the Spin host while each
//                          row whose name matches the pattern is loaded, printed as shares of
//                          samples by where they ran (the guest's Wasm shows as [JIT]) and the
//                          hottest functions. Needs `perf` (apt: linux-perf); perf inflates
//                          the CPU of the rows it records.
//
// Seeded through the API on each runtime: an app, a tenant with 5 flags (and an owner who signs
// in for a live access token), a tenant with 100 flags, a tenant-bound `flags:read` key per
// tenant and an app-wide `token:introspect` key. Servers listen on 127.0.0.1 only and are
// stopped by their own PID; the temp dir is removed.

import { execFileSync, spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, call, devIssuer, log, runBench, startReady, startServer, stopServer } from "./lib.mjs";
import { profile } from "./profile.mjs";

const DURATION = process.env.DURATION ?? "5s";
const CONNECTIONS = (process.env.CONNECTIONS ?? "1,32").split(",").map(Number);
const TABLES = (process.env.TABLES ?? "workers,spin").split(",");
const MAX_SECONDS = Number(process.env.MAX_SECONDS ?? 900);
// PROFILE=<part of a row name> (Workers table only): instead of the table, a V8 CPU profile of
// each matching row under load, as self time per function per request.
const PROFILE = process.env.PROFILE;
const INSPECTOR_PORT = Number(process.env.INSPECTOR_PORT ?? 9229);
// SPIN_PERF=<pattern of row names> (Spin table): a perf profile of the host for those rows.
const SPIN_PERF = process.env.SPIN_PERF ? new RegExp(process.env.SPIN_PERF) : null;
const SPIN_HOST = path.resolve(ROOT, process.env.SPIN_TEST_HOST ?? path.join(process.env.HOME ?? "", ".cache/edgeplane/spin-host-target/debug/spin-test-host"));
const SPIN_WASM = path.resolve(ROOT, process.env.EDGEPLANE_SPIN_WASM ?? "target/wasm32-wasip2/release/edgeplane_spin.wasm");
const FLOOR_DIR = path.join(ROOT, "bench/spin-floor");
const FLOOR_WASM = path.join(FLOOR_DIR, "target/wasm32-wasip2/release/spin_floor.wasm");
const WORKER_WASM = path.join(ROOT, "worker/build/index_bg.wasm");
// The Workers floors: name, script, the column of ratios to it, the profile name (PROFILE=...).
const WORKER_FLOORS = [
  ["JS hello-world worker (floor)", path.join(ROOT, "bench/floor-worker.js"), "× floor", "floor"],
  ["Rust hello-world worker (workers-rs)", path.join(ROOT, "bench/worker-floor/build/index.js"), "× workers-rs floor", "rust-floor"],
  ["Rust bare wasm-bindgen fetch", path.join(ROOT, "bench/worker-floor-bare/build/index.js"), "× bare wasm floor", "bare-floor"],
];
// A JS worker doing a hot route's I/O and nothing else (bench/floor-io-worker.js): two rows, no
// column of its own. Set beside GET /health and OFREP of 5 flags, it shows what the runtime's
// Request/Response API costs those routes by itself.
const IO_FLOOR = path.join(ROOT, "bench/floor-io-worker.js");
const IO_FLOOR_ROWS = ["JS worker with /health's I/O", "JS worker with OFREP's I/O (POST, 5 flags)"];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-edge-bench-"));
const servers = [];
setTimeout(() => { log("bench/edge: time limit reached"); process.exit(1); }, MAX_SECONDS * 1000).unref();

// ---- CPU of a process tree ------------------------------------------------------------------

const TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

/** CPU seconds used so far by `pid` and all its descendants (their own time, plus that of
 * descendants already reaped, so a child exiting mid-measure does not lose its time). */
function treeCpuSeconds(pid) {
  const procs = new Map();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try { stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8"); } catch { continue; }
    // Fields after the command name, which may itself hold spaces and parentheses.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // f[1] ppid; f[11..14] utime, stime, cutime, cstime (proc(5) fields 14-17).
    procs.set(Number(entry), { ppid: Number(f[1]), ticks: f.slice(11, 15).reduce((a, t) => a + Number(t), 0) });
  }
  let ticks = 0;
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop();
    ticks += procs.get(p)?.ticks ?? 0;
    for (const [child, info] of procs) if (info.ppid === p) todo.push(child);
  }
  return ticks / TICKS_PER_SECOND;
}

// ---- load -----------------------------------------------------------------------------------

/** A request to load: method, URL, headers, body. */
const req = (method, url, headers = {}, body = undefined) => ({ method, url, headers, body });

function wrkScript(r, extraHeaders) {
  const file = path.join(tmp, `wrk-${crypto.randomBytes(4).toString("hex")}.lua`);
  const headers = { ...r.headers, ...extraHeaders };
  const lines = [`wrk.method = ${JSON.stringify(r.method)}`,
    ...Object.entries(headers).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)];
  if (r.body !== undefined) lines.push(`wrk.body = ${JSON.stringify(r.body)}`);
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

/** Loads `r` with wrk at `connections` while measuring the CPU of `pid`'s process tree. */
function load(pid, r, connections, extraHeaders = {}) {
  const script = wrkScript(r, extraHeaders);
  const before = treeCpuSeconds(pid);
  const out = execFileSync("wrk", [`-t${Math.min(2, connections)}`, `-c${connections}`, `-d${DURATION}`,
    "--latency", "-s", script, r.url]).toString();
  const cpu = treeCpuSeconds(pid) - before;
  const grab = (re) => (out.match(re) ?? [])[1];
  const requests = Number(grab(/(\d+) requests in/) ?? 0);
  const errors = (out.match(/(Non-2xx or 3xx responses: \d+|Socket errors:[^\n]*)/g) ?? []).join("; ");
  return {
    requests,
    cpuUs: requests ? (cpu * 1e6) / requests : NaN,
    rps: Number(grab(/Requests\/sec:\s+([\d.]+)/) ?? NaN),
    p50: grab(/\n\s+50%\s+(\S+)/) ?? "?",
    p99: grab(/\n\s+99%\s+(\S+)/) ?? "?",
    errors,
  };
}

/** One request, which must answer 2xx; resolves to the body text. */
async function once(r) {
  const res = await fetch(r.url, { method: r.method, headers: r.headers, body: r.body });
  const text = await res.text();
  if (!res.ok) throw new Error(`${r.method} ${r.url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return text;
}

// ---- seeding --------------------------------------------------------------------------------

/** Flag i of a set: a static boolean, a static string, a rule on the email domain, a 20% rollout. */
function flag(i) {
  switch (i % 4) {
    case 0: return { type: "boolean", value: true };
    case 1: return { type: "string", value: `value-${i}` };
    case 2: return { type: "boolean", value: false, rules: [{ name: "staff", conditions: [{ attribute: "email", op: "ends_with", values: ["@shop.example"] }], value: true }] };
    default: return { type: "boolean", value: false, rules: [{ rollout: { variants: [{ variant: "on", value: true, weight: 20 }, { variant: "off", value: false, weight: 80 }] } }] };
  }
}

/** Seeds a fresh Edgeplane at `base` and returns the requests of the table, floor excluded. */
async function seed(base, operator) {
  const api = (method, route, body) => call(base, method, route, body, operator);
  const app = await api("POST", "/v1/apps", { name: `Edge bench ${crypto.randomBytes(3).toString("hex")}` });
  const tenants = {};
  for (const size of [5, 100]) {
    const domain = `edge-${size}-${crypto.randomBytes(4).toString("hex")}`;
    const t = await api("POST", "/v1/tenants", { name: `Edge ${size}`, domain, plan: "pro", owner_email: `owner@${domain}.example`, apps: [app.id] });
    for (let i = 0; i < size; i++) await api("PUT", `/v1/tenants/${t.tenant.id}/flags/f${String(i).padStart(3, "0")}`, flag(i));
    const key = (await api("POST", `/v1/apps/${app.id}/keys`, { scopes: ["flags:read"], tenant_id: t.tenant.id })).secret;
    tenants[size] = { domain, key, invitation: new URL(t.invitation_link).searchParams.get("token"), email: `owner@${domain}.example` };
  }
  const password = "correct horse battery staple";
  const owner = tenants[5];
  await call(base, "POST", "/v1/invitations/accept", { token: owner.invitation, password });
  const access = (await call(base, "POST", "/v1/auth/login", { tenant: owner.domain, email: owner.email, password })).access_token;
  const introspectKey = (await api("POST", `/v1/apps/${app.id}/keys`, { scopes: ["token:introspect"] })).secret;

  const ofrep = (size) => req("POST", `${base}/ofrep/v1/evaluate/flags`,
    { "content-type": "application/json", "x-api-key": tenants[size].key },
    JSON.stringify({ context: { targetingKey: "user-42", email: "ana@shop.example" } }));
  const rows = [
    ["GET /health", req("GET", `${base}/health`)],
    ["GET /.well-known/jwks.json", req("GET", `${base}/.well-known/jwks.json`)],
    ["GET /.well-known/openid-configuration", req("GET", `${base}/.well-known/openid-configuration`)],
    ["OFREP bulk, 5 flags", ofrep(5)],
    ["OFREP bulk, 100 flags", ofrep(100)],
    ["GET /v1/flags (5 flags)", req("GET", `${base}/v1/flags`, { "x-api-key": tenants[5].key })],
    ["POST /oauth/introspect (live)", req("POST", `${base}/oauth/introspect`,
      { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${introspectKey}` }, `token=${access}`)],
  ];
  // Each answers as it should before it is loaded.
  for (const size of [5, 100]) {
    const n = JSON.parse(await once(ofrep(size))).flags.length;
    if (n !== size) throw new Error(`OFREP: expected ${size} flags, got ${n}`);
  }
  const introspection = JSON.parse(await once(rows[6][1]));
  if (introspection.active !== true) throw new Error(`introspection says ${JSON.stringify(introspection)}`);
  for (const [, r] of rows) await once(r);
  return rows;
}

// ---- output ---------------------------------------------------------------------------------

const us = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "?");
const ratio = (x, floor) => (Number.isFinite(x) && floor > 0 ? `${(x / floor).toFixed(1)}×` : "?");

/** `floors`: the column names of the ratios to rows[0], rows[1], ... (the floors come first). */
function printTable(title, rows, { close = false, floors = ["× floor"] } = {}) {
  const cpu = (row) => row.runs[CONNECTIONS[0]].cpuUs;
  const head = ["route", `CPU µs/req (c${CONNECTIONS[0]})`, ...floors];
  for (const c of CONNECTIONS) head.push(`req/s c${c}`, `p50 c${c}`, `p99 c${c}`);
  if (close) head.push("p50 close", "p99 close");
  head.push("errors");
  log(`### ${title}`);
  log("");
  log(`| ${head.join(" | ")} |`);
  log(`|${head.map((h, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
  for (const row of rows) {
    const first = row.runs[CONNECTIONS[0]];
    const cells = [row.name, us(first.cpuUs), ...floors.map((_, i) => ratio(first.cpuUs, cpu(rows[i])))];
    for (const c of CONNECTIONS) cells.push(Math.round(row.runs[c].rps).toLocaleString("en-US"), row.runs[c].p50, row.runs[c].p99);
    if (close) cells.push(row.close.p50, row.close.p99);
    const errors = [...CONNECTIONS.map((c) => row.runs[c].errors), row.close?.errors].filter(Boolean).join("; ");
    cells.push(errors || "0");
    log(`| ${cells.join(" | ")} |`);
  }
  log("");
}

/** Loads each row at every connection count (and, with `close`, once more with a connection per
 * request at the first count) against the process tree of `pid`; `perf` names the rows whose
 * loads are recorded with perf (see SPIN_PERF). */
function measure(pid, rows, { close = false, perf = null } = {}) {
  return rows.map(([name, r]) => {
    const recording = perf?.test(name) ? startPerf(pid, name) : null;
    const runs = {};
    for (const c of CONNECTIONS) runs[c] = load(pid, r, c);
    const result = { name, runs };
    if (close) result.close = load(pid, r, CONNECTIONS[0], { connection: "close" });
    if (recording) result.profile = stopPerf(recording);
    return result;
  });
}

/** Starts `perf record -g` on process `pid` (all its threads) for row `name`. */
function startPerf(pid, name) {
  const file = path.join(tmp, `perf-${name.replace(/[^a-z0-9]+/gi, "-")}.data`);
  const proc = spawn("perf", ["record", "-g", "-F", "4999", "-p", String(pid), "-o", file], { stdio: "ignore" });
  spawnSync("sleep", ["0.5"]);
  return { proc, file };
}

/** Stops a recording and summarises it: shares by where the samples ran, then by function. */
function stopPerf({ proc, file }) {
  proc.kill("SIGINT");
  for (let i = 0; i < 50 && proc.exitCode === null && proc.signalCode === null; i++) spawnSync("sleep", ["0.1"]);
  spawnSync("sleep", ["0.5"]);
  const report = (sort) => spawnSync("perf", ["report", "-i", file, "--no-children", "--sort", sort, "--stdio", "-g", "none"],
    { maxBuffer: 64 * 2 ** 20 }).stdout?.toString() ?? "";
  const lines = (text, n) => text.split("\n").filter((l) => l.trim() && !l.startsWith("#")).slice(0, n);
  return [...lines(report("dso"), 6), "", ...lines(report("sym"), 25)];
}

const fileSize = (f) => {
  if (!fs.existsSync(f)) return "missing";
  const raw = fs.statSync(f).size;
  const gz = execFileSync("gzip", ["-9", "-c", f], { maxBuffer: 64 * 2 ** 20 }).length;
  return `${raw.toLocaleString("en-US")} bytes (${gz.toLocaleString("en-US")} gzip -9)`;
};

// ---- runtimes -------------------------------------------------------------------------------

async function workersTable(issuer) {
  // The per-key guard of the flag routes (5,000/s per isolate by default) would answer 429 at
  // 32 connections: lifted, so every row measures the route itself.
  const vars = { ...issuer.vars, MASTER_KEY: crypto.randomBytes(32).toString("base64"), FLAGS_RATE_LIMIT_PER_SECOND: "1000000" };
  const present = WORKER_FLOORS.filter(([, script], i) => {
    if (i === 0 || fs.existsSync(script)) return true;
    log(`(no ${path.relative(ROOT, script)}: that floor is left out; make bench-edge builds it)`);
    return false;
  });
  const args = [...present.flatMap(([, script]) => ["--floor", script]), "--floor", IO_FLOOR];
  if (process.env.WORKER_SCRIPT) args.push("--script", path.resolve(ROOT, process.env.WORKER_SCRIPT));
  if (PROFILE) args.push("--inspector-port", String(INSPECTOR_PORT));
  const server = await startServer(vars, { tmp, state: path.join(tmp, "workerd-state"), maxSeconds: MAX_SECONDS, args });
  servers.push(server);
  const { direct_url: direct, floor_urls: floorUrls } = server.ready;
  const rows = await seed(direct, issuer.token);
  const floors = [];
  for (const [i, [name]] of present.entries()) {
    const floor = req("GET", `${floorUrls[i]}/`);
    if ((await once(floor)) !== "ok") throw new Error(`${name} did not answer ok`);
    floors.push([name, floor]);
  }
  const ioUrl = floorUrls[present.length];
  const ioRows = [
    [IO_FLOOR_ROWS[0], req("GET", `${ioUrl}/health`)],
    [IO_FLOOR_ROWS[1], req("POST", `${ioUrl}/ofrep/v1/evaluate/flags`, { "content-type": "application/json", "x-api-key": "ep_live_x" },
      JSON.stringify({ context: { targetingKey: "user-42", email: "ana@shop.example" } }))],
  ];
  if (JSON.parse(await once(ioRows[0][1])).status !== "ok") throw new Error(`${IO_FLOOR_ROWS[0]} did not answer as /health`);
  if (JSON.parse(await once(ioRows[1][1])).flags.length !== 5) throw new Error(`${IO_FLOOR_ROWS[1]} did not answer five flags`);
  const pid = server.proc.pid;
  if (PROFILE) {
    // The harness names its floor workers floor, floor-2, floor-3 in the order given.
    const workerOf = Object.fromEntries(present.map(([, , , p], i) => [p, i === 0 ? "floor" : `floor-${i + 1}`]));
    workerOf["io-floor"] = `floor-${present.length + 1}`;
    const named = [...present.map(([, , , p], i) => [p, floors[i][1]]), ...ioRows.map(([n, r]) => [`io-floor: ${n}`, r]), ...rows];
    for (const [name, r] of named.filter(([n]) => n.includes(PROFILE))) {
      let run;
      const worker = workerOf[name] ?? (name.startsWith("io-floor") ? workerOf["io-floor"] : "edgeplane");
      const { total, rows: fns } = await profile(INSPECTOR_PORT, worker, async () => { run = load(pid, r, 1); });
      const per = (x) => (x / run.requests).toFixed(1);
      log(`### profile: ${name}: ${run.requests} requests, ${us(run.cpuUs)} µs CPU/req (process tree), ${per(total)} µs/req sampled in the isolate`);
      for (const [fn, t] of fns.slice(0, 45)) log(`${per(t).padStart(8)} µs  ${fn}`);
      log("");
    }
    await stopServer(server);
    return;
  }
  const measured = measure(pid, [...floors, ...ioRows, ...rows]);
  const viaEntry = load(pid, req("GET", `${server.url}/health`), CONNECTIONS[0]);
  await stopServer(server);
  printTable("Workers: workerd via Miniflare, each worker on its own socket", measured, { floors: present.map(([, , column]) => column) });
  const cpuOf = (name) => measured.find((r) => r.name === name)?.runs[CONNECTIONS[0]].cpuUs;
  log(`Against a JS worker doing the same I/O (c${CONNECTIONS[0]}): GET /health ${ratio(cpuOf("GET /health"), cpuOf(IO_FLOOR_ROWS[0]))}, ` +
    `OFREP bulk of 5 flags ${ratio(cpuOf("OFREP bulk, 5 flags"), cpuOf(IO_FLOOR_ROWS[1]))}.`);
  const health = measured.find((r) => r.name === "GET /health");
  log(`Miniflare's entry worker (the harness's main URL) adds ${us(viaEntry.cpuUs - health.runs[CONNECTIONS[0]].cpuUs)} µs ` +
    `to GET /health (${us(viaEntry.cpuUs)} µs per request through it at c${CONNECTIONS[0]}); Workers has no such hop.`);
  log("");
}

async function startSpinHost(manifest, wasm, state, vars, logName) {
  const args = ["--manifest", manifest, "--wasm", wasm, "--state-dir", state, "--listen", "127.0.0.1:0",
    "--max-seconds", String(MAX_SECONDS)];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k.toLowerCase()}=${v}`);
  const server = await startReady(SPIN_HOST, args, { tmp, logName });
  servers.push(server);
  return server;
}

async function spinTable(issuer) {
  for (const [file, how] of [[SPIN_HOST, "make spin-host"], [SPIN_WASM, "make spin"], [FLOOR_WASM, "make bench-edge"]]) {
    if (!fs.existsSync(file)) throw new Error(`${path.relative(ROOT, file)} is missing (${how}), or set TABLES=workers`);
  }
  // The floor first, alone: Spin's hello-world component on the same host binary.
  const floorHost = await startSpinHost(path.join(FLOOR_DIR, "spin.toml"), FLOOR_WASM, path.join(tmp, "spin-floor-state"), {}, "spin-floor.log");
  const floor = req("GET", `${floorHost.url}/`);
  // Spin gives every request a fresh instance: the floor's per-instance count never passes 1.
  const counts = new Set();
  for (let i = 0; i < 5; i++) counts.add(await once(floor));
  const fresh = counts.size === 1 && counts.has("hello 1");
  const floorRun = measure(floorHost.proc.pid, [["Spin hello-world component (floor)", floor]], { close: true });
  await stopServer(floorHost);

  const vars = { ...issuer.vars, EDGEPLANE_ENV: "development", MASTER_KEY: crypto.randomBytes(32).toString("base64") };
  const host = await startSpinHost(path.join(ROOT, "spin.toml"), SPIN_WASM, path.join(tmp, "spin-state"), vars, "spin.log");
  const rows = await seed(host.url, issuer.token);
  if (SPIN_PERF && spawnSync("perf", ["--version"]).error) throw new Error("SPIN_PERF needs perf (apt-get install linux-perf)");
  const measured = measure(host.proc.pid, rows, { close: true, perf: SPIN_PERF });
  await stopServer(host);
  printTable("Spin: the Spin test host (tests/spin-host); the floor and Edgeplane each in a host of their own, one after the other", [...floorRun, ...measured], { close: true });
  log(`fresh instance per request (floor's per-instance count over 5 requests: ${[...counts].join(", ")}): ${fresh ? "yes" : "NO"}`);
  log("");
  for (const row of measured.filter((r) => r.profile)) {
    log(`### perf: ${row.name} (the Spin host's samples; [JIT] is the guest's Wasm)`);
    log("");
    for (const line of row.profile) log(line);
    log("");
  }
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  if (spawnSync("wrk", ["--version"]).error) throw new Error("wrk is missing (make bench installs it: apt-get install wrk)");
  const issuer = devIssuer(tmp, MAX_SECONDS);
  const cpu = os.cpus()[0]?.model ?? "?";
  const workerd = spawnSync(path.join(ROOT, "node_modules/.bin/workerd"), ["--version"]).stdout?.toString().trim() ?? "?";
  log(`machine: ${os.cpus().length} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, node ${process.version}, ${workerd}`);
  log(`date:    ${new Date().toISOString().slice(0, 16)}Z`);
  log(`load:    ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} (1/5/15 min) at the start`);
  log(`wrk:     ${DURATION} per route and connection count, ${Math.min(2, Math.max(...CONNECTIONS))} threads at most; CPU per request from /proc at c${CONNECTIONS[0]}`);
  log(`wasm:    worker ${fileSize(WORKER_WASM)}; spin ${fileSize(SPIN_WASM)}; spin floor ${fileSize(FLOOR_WASM)}`);
  log("");
  if (TABLES.includes("workers")) await workersTable(issuer);
  if (TABLES.includes("spin")) await spinTable(issuer);
  log(`load:    ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} (1/5/15 min) at the end`);
}

await runBench(main, tmp, async () => {
  for (const s of servers) await stopServer(s).catch(() => {});
});
