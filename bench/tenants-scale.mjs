#!/usr/bin/env node
// Tenant capacity benchmark (NFR-CAP-001/002): operator list and lookup latency on a
// near-empty database and at scale, on the built worker in workerd (tests/harness/workerd.mjs).
// A benchmark, not a test: it prints figures for bench/RESULTS.md and fails only on errors.
//
//   node bench/tenants-scale.mjs     after `make worker`; knobs are environment variables: N,
//                                    WARMUP, CONCURRENCY, TENANTS, USER_TENANTS, USERS_PER, MAX_SECONDS
//
// 1. Serves worker/build in the harness on a fresh state dir with a dev operator issuer, provisions
//    5 tenants through the API (one suspended) and times the list and lookup routes.
// 2. Stops the harness (one process at a time on the SQLite files) and seeds D1 through a Miniflare
//    of its own on the same state dir: TENANTS tenants with a status mix, USERS_PER users in each of
//    USER_TENANTS of them (10 x 10,000 by default: all 1,000 x 10,000 would be ~6.5 GiB and well
//    over 10 minutes here; USER_TENANTS=1000 asks for it), 1-20 users in every other live tenant.
//    Then EXPLAIN QUERY PLAN and D1's rows_read of the list queries, and the database size.
// 3. Serves the same state again, checks every live tenant is listed once across the pages, times
//    the same routes and prints the comparison.
// Servers listen on 127.0.0.1 only; the run is bounded by MAX_SECONDS; its temp dir is removed.

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import * as lib from "./lib.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const num = (name, dflt) => Number(process.env[name] ?? dflt);
const N = num("N", 300); // measured requests per route and mode
const WARMUP = num("WARMUP", 30);
const CONC = num("CONCURRENCY", 10);
const TENANTS = num("TENANTS", 1000);
const USER_TENANTS = num("USER_TENANTS", 10); // tenants seeded with USERS_PER users each
const USERS_PER = num("USERS_PER", 10000);
const CHUNK = num("CHUNK", 5000); // rows per D1 batch (one transaction)
const MAX_SECONDS = num("MAX_SECONDS", 900);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-scale-"));
const state = path.join(tmp, "state");
let server; // the harness child while one runs
let seeder; // the seeding Miniflare while it runs

const log = (s = "") => process.stdout.write(`${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms).unref());

// ---- servers --------------------------------------------------------------------------------

async function startServer(vars) {
  const args = ["tests/harness/workerd.mjs", "--state", state, "--max-seconds", String(MAX_SECONDS)];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}=${v}`);
  const errFd = fs.openSync(path.join(tmp, "server.log"), "a"); // the harness's stderr, shown on failure
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["pipe", "pipe", errFd] });
  fs.closeSync(errFd);
  server = child;
  child.exitedP = new Promise((r) => child.once("exit", r));
  const ready = new Promise((r) => readline.createInterface({ input: child.stdout }).once("line", r));
  const line = await Promise.race([ready, child.exitedP.then(() => null), sleep(60_000).then(() => null)]);
  if (!line) throw new Error("the harness did not print its ready line within 60 s");
  return JSON.parse(line).url;
}

/** Closes the harness's stdin (it disposes Miniflare and exits), then SIGTERM, then SIGKILL. */
async function stopServer() {
  const child = server;
  if (!child || child.exitCode !== null) return;
  child.stdin.end();
  for (const signal of [null, "SIGTERM", "SIGKILL"]) {
    if (signal) try { process.kill(child.pid, signal); } catch { break; } // already gone
    if ((await Promise.race([child.exitedP, sleep(15_000).then(() => "timeout")])) !== "timeout") break;
  }
  server = undefined;
}

async function cleanup() {
  await stopServer().catch(() => {});
  await seeder?.dispose().catch(() => {});
  fs.rmSync(tmp, { recursive: true, force: true });
}

// ---- HTTP measurement -----------------------------------------------------------------------

let base, token;

async function hit(route, init = {}) {
  const t0 = performance.now();
  const res = await fetch(base + route, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  });
  const body = Buffer.from(await res.arrayBuffer());
  const ms = performance.now() - t0;
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${route}: HTTP ${res.status}\n${body.toString().slice(0, 1500)}`);
  return { ms, bytes: body.length, body };
}
const getJson = async (route) => JSON.parse((await hit(route)).body);

const pct = (sorted, p) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];

/** N requests of `route(i)` with `workers` in flight: p50, p99 (ms), req/s, bytes (last). */
async function run(route, workers) {
  const lat = [];
  let next = 0, bytes = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: workers }, async () => {
    while (next < N) {
      const r = await hit(route(next++));
      lat.push(r.ms);
      bytes = r.bytes;
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { p50: pct(lat, 50), p99: pct(lat, 99), rps: N / secs, bytes };
}

async function measure(routes) {
  // Warms the isolate (wasm tier-up, D1 statement cache) on every route before timing any.
  const all = Object.values(routes);
  for (let i = 0; i < WARMUP * all.length; i++) await hit(all[i % all.length](i));
  const out = {};
  for (const [name, route] of Object.entries(routes)) {
    for (let i = 0; i < WARMUP; i++) await hit(route(i));
    out[name] = { seq: await run(route, 1), conc: await run(route, CONC) };
    const s = out[name].seq;
    log(`  ${name.padEnd(22)} p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  ${s.rps.toFixed(0)} req/s  ${s.bytes} B`);
  }
  return out;
}

/** Follows next_cursor through every page; returns the ids in order and each page's cursor. */
async function walk(limit) {
  const ids = [], cursors = [];
  let cursor = null;
  do {
    const page = await getJson(`/v1/tenants?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
    ids.push(...page.items.map((t) => t.id));
    cursor = page.next_cursor;
    if (cursor) cursors.push(cursor);
  } while (cursor);
  return { ids, cursors };
}

/** The routes, fixed against what the database holds: `expected` tenants listed in all. */
async function routesFor(expected, lookupIds) {
  const limit = Math.min(100, Math.max(1, Math.floor(expected / 10)));
  const { ids, cursors } = await walk(limit);
  if (ids.length !== expected) throw new Error(`listing walked ${ids.length} tenants, expected ${expected}`);
  if (new Set(ids).size !== ids.length) throw new Error("listing repeated a tenant across pages");
  const deepIndex = Math.max(0, Math.floor(Math.floor(0.9 * expected) / limit) - 1); // ~90% down
  const deep = cursors[deepIndex];
  log(`  listing walked: ${ids.length} tenants in ${cursors.length + 1} pages; deep cursor after ${(deepIndex + 1) * limit}`);
  return {
    "list first page": () => "/v1/tenants",
    "list q=north": () => "/v1/tenants?q=north",
    "list q=zzz (no match)": () => "/v1/tenants?q=zzz",
    "list status=suspended": () => "/v1/tenants?status=suspended",
    "list deep cursor": () => `/v1/tenants?cursor=${deep}`,
    "get by id": (i) => `/v1/tenants/${lookupIds[i % lookupIds.length]}`,
    "/health (floor)": () => "/health", // no token, no D1: the runtime and client floor
  };
}

// ---- seed data ------------------------------------------------------------------------------

let seed = 0x5eed;
const rand = () => { // mulberry32: the same data set on every run
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (a) => a[Math.floor(rand() * a.length)];
const randB64 = (n) => Array.from({ length: n }, () => pick("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")).join("");
const hex = (n) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join("");
/** A UUIDv7 at `ms`, like core's ids::new_ordered_id. */
function uuidv7(ms) {
  const t = ms.toString(16).padStart(12, "0");
  return `${t.slice(0, 8)}-${t.slice(8)}-7${hex(3)}-${"89ab"[Math.floor(rand() * 4)]}${hex(3)}-${hex(12)}`;
}
const W1 = ["Acme", "Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Soylent",
  "Cyberdyne", "Tyrell", "Vandelay", "Wonka", "Aperture", "Monarch", "Dunder", "Sterling", "Nakatomi",
  "Virtucon", "Prestige", "Bluth", "Oceanic", "Gekko", "Massive", "Zenith", "Orbital", "Pioneer", "Summit"];
const W2 = ["Systems", "Labs", "Logistics", "Health", "Analytics", "Foods", "Capital", "Media", "Robotics", "Energy"];
const SUFFIX = ["Ltd", "Inc", "GmbH", "SA", "LLC", "BV"];
const FIRST = ["Ada", "Alan", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Edsger"];
const LAST = ["Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie", "Allen", "Dijkstra"];
const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-");
const tenantName = (i) => { const a = pick(W1), b = pick(W2); return { name: `${a} ${b} ${pick(SUFFIX)}`, domain: `${slug(a)}-${slug(b)}-${i}` }; };

const DAY = 86_400_000;
const TENANT_COLS = "id, name, domain, plan, status, suspended_reason, suspended_at, deletion_requested_at, purge_after, deleted_at, created_at, updated_at, version";
const USER_COLS = "id, tenant_id, email, display_name, role, status, password_hash, password_changed_at, mfa_enabled, totp_secret_enc, last_login_at, created_at, updated_at";

function seedTenants(now) {
  const span = 730 * DAY, start = now - span - DAY;
  return Array.from({ length: TENANTS }, (_, i) => {
    const created = Math.floor(start + (i * span) / TENANTS + rand() * 60_000);
    const { name, domain } = tenantName(i);
    const r = rand();
    const status = r < 0.02 ? "deleted" : r < 0.05 ? "pending_deletion" : r < 0.12 ? "suspended" : "active";
    const updated = created + Math.floor(rand() * (now - created));
    const t = { id: uuidv7(created), name, domain, plan: rand() < 0.6 ? "free" : rand() < 0.75 ? "pro" : "enterprise",
      status, reason: null, suspendedAt: null, delReq: null, purgeAfter: null, deletedAt: null, created, updated };
    if (status === "suspended") Object.assign(t, { reason: "payment overdue", suspendedAt: updated });
    if (status === "pending_deletion") Object.assign(t, { delReq: updated, purgeAfter: updated + 30 * DAY });
    if (status === "deleted") Object.assign(t, { domain: null, deletedAt: updated });
    return t;
  });
}

function userRow(t, j, now) {
  const created = t.created + Math.floor(rand() * (now - t.created));
  const r = rand();
  const status = j === 0 ? "active" : r < 0.02 ? "deleted" : r < 0.07 ? "disabled" : r < 0.15 ? "invited" : "active";
  const first = pick(FIRST), last = pick(LAST), live = status !== "deleted";
  const hasPassword = status === "active" || status === "disabled";
  const mfa = hasPassword && rand() < 0.1 ? 1 : 0;
  return [uuidv7(created), t.id, live ? `${first}.${last}.${j}@${t.domain}.example`.toLowerCase() : null,
    live ? `${first} ${last}` : null, j === 0 ? "owner" : j % 50 === 1 ? "admin" : "user", status,
    hasPassword ? `$pbkdf2-sha256$i=600000$${randB64(22)}$${randB64(43)}` : null, hasPassword ? created : null,
    mfa, mfa ? randB64(80) : null, status === "active" ? now - Math.floor(rand() * 30 * DAY) : null, created, created];
}

/** SQL literal of a generated value (text quoted, '' doubled). */
const lit = (v) => (v === null ? "NULL" : typeof v === "number" ? String(v) : `'${String(v).replaceAll("'", "''")}'`);

/** Inserts `rows` as multi-row INSERTs of ROWS_PER_STMT literal rows, CHUNK rows per D1 batch (one
 * transaction). Literal VALUES: Miniflare's D1 costs ~2 ms per statement, so one row per
 * statement would seed ~500 rows/s; bound parameters are capped at 100 per statement on D1. */
async function insertAll(db, table, cols, rows) {
  const ROWS_PER_STMT = 200; // ~70 KB of SQL for a user row set; D1 caps a statement at 100 KB
  for (let i = 0; i < rows.length; i += CHUNK) {
    const stmts = [];
    for (let j = i; j < Math.min(i + CHUNK, rows.length); j += ROWS_PER_STMT) {
      const values = rows.slice(j, Math.min(j + ROWS_PER_STMT, i + CHUNK, rows.length)).map((r) => `(${r.map(lit).join(", ")})`);
      stmts.push(db.prepare(`INSERT INTO ${table} (${cols}) VALUES ${values.join(",\n")}`));
    }
    await db.batch(stmts);
  }
}

/** Bytes of the D1 database files on disk (SQLite file and WAL; the WAL keeps its high-water size). */
function d1Files() {
  const dir = path.join(state, "v3", "d1", "miniflare-D1DatabaseObject");
  return fs.readdirSync(dir).filter((f) => /^[0-9a-f]{64}\.sqlite(-wal)?$/.test(f))
    .reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);
}
/** The database size as D1 reports it (`meta.size_after`: pages in use, what D1's limit counts). */
const d1Size = async (db) => (await db.prepare("SELECT 1").run()).meta.size_after;
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

// ---- main -----------------------------------------------------------------------------------

/** A development operator issuer for this run, wired as tests/api/helpers.rs does: the worker's
 * --var pairs (without the private key) and an operator token. */
function devIssuer() {
  return lib.devIssuer(tmp, MAX_SECONDS);
}

/** Seeds through a Miniflare of its own on the stopped harness's state (D1 binding of wrangler.toml). */
async function seedD1() {
  const toml = fs.readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
  const d1 = toml.slice(toml.indexOf("[[d1_databases]]")).split(/\n\[/)[0];
  const d1Id = (/preview_database_id\s*=\s*"([^"]+)"/.exec(d1) ?? /database_id\s*=\s*"([^"]+)"/.exec(d1))[1];
  seeder = new Miniflare({
    host: "127.0.0.1", port: 0, modules: true,
    script: "export default { fetch() { return new Response('seeder') } }",
    compatibilityDate: /compatibility_date\s*=\s*"([^"]+)"/.exec(toml)[1],
    d1Databases: { DB: d1Id }, defaultPersistRoot: path.join(state, "v3"),
  });
  const db = await seeder.getD1Database("DB");
  const sizeBefore = await d1Size(db);
  const now = Date.now();
  const tenants = seedTenants(now);
  let t0 = performance.now();
  await insertAll(db, "tenants", TENANT_COLS, tenants.map((t) => [t.id, t.name, t.domain, t.plan, t.status,
    t.reason, t.suspendedAt, t.delReq, t.purgeAfter, t.deletedAt, t.created, t.updated, 1]));
  const tenantSecs = (performance.now() - t0) / 1000;
  const live = tenants.filter((t) => t.status !== "deleted");
  const active = tenants.filter((t) => t.status === "active");
  const big = Array.from({ length: Math.min(USER_TENANTS, active.length) }, (_, k) => active[Math.floor((k * active.length) / USER_TENANTS)]);
  let users = 0, pending = [];
  t0 = performance.now();
  for (const t of live) {
    const count = big.includes(t) ? USERS_PER : 1 + Math.floor(rand() * 20);
    for (let j = 0; j < count; j++) pending.push(userRow(t, j, now));
    users += count;
    if (pending.length >= CHUNK) await insertAll(db, "users", USER_COLS, pending.splice(0));
  }
  await insertAll(db, "users", USER_COLS, pending);
  const userSecs = (performance.now() - t0) / 1000;
  const counts = await db.prepare("SELECT (SELECT count(*) FROM tenants) AS t, (SELECT count(*) FROM users) AS u").first();
  log(`  tenants: ${TENANTS} rows in ${tenantSecs.toFixed(1)} s; users: ${users} rows in ${userSecs.toFixed(1)} s (${Math.round(users / userSecs)} rows/s)`);
  log(`  D1 holds ${counts.t} tenants, ${counts.u} users (with the API-provisioned ones and the operator)`);
  const sizeAfter = await d1Size(db);
  await explain(db, big[0].id);
  await seeder.dispose();
  seeder = undefined;
  const perUser = (sizeAfter - sizeBefore) / users;
  log(`  D1 database: ${mib(sizeBefore)} near-empty, ${mib(sizeAfter)} at scale (~${Math.round(perUser)} B per user row` +
    ` with its indexes); files on disk ${mib(d1Files())} with the WAL`);
  return { live, big, users, userSecs, perUser };
}

// core/src/tenants/query.rs list_stmt, one statement per filter combination (kept in step by hand).
const LIST_WHERE = {
  "list (no filter)": ["status <> 'deleted' AND (created_at, id) < (?1, ?2)", []],
  "list status=": ["status = ?4 AND (created_at, id) < (?1, ?2)", ["suspended"]],
  "list q=north": ["status <> 'deleted' AND (name LIKE ?4 ESCAPE '\\' OR domain LIKE ?4 ESCAPE '\\') AND (created_at, id) < (?1, ?2)", ["north%"]],
  "list q=zzz": ["status <> 'deleted' AND (name LIKE ?4 ESCAPE '\\' OR domain LIKE ?4 ESCAPE '\\') AND (created_at, id) < (?1, ?2)", ["zzz%"]],
  "list status=active q=north": ["status = ?4 AND (name LIKE ?5 ESCAPE '\\' OR domain LIKE ?5 ESCAPE '\\') AND (created_at, id) < (?1, ?2)", ["active", "north%"]],
};

async function explain(db, tenantId) {
  log("\n==> EXPLAIN QUERY PLAN at scale (D1, no ANALYZE), and rows_read (D1 meta) of the query itself");
  const plans = {
    ...Object.fromEntries(Object.entries(LIST_WHERE).map(([k, [where, extra]]) => [k, [
      `SELECT ${TENANT_COLS} FROM tenants WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT ?3`, [2 ** 53 - 1, "", 51, ...extra]]])),
    "get by id": [`SELECT ${TENANT_COLS} FROM tenants WHERE id = ?1`, [tenantId]],
    "operator sign-in (core/src/auth/provision.rs)": ["SELECT id, role, status, email, last_login_at FROM users WHERE tenant_id IS NULL AND external_issuer = ?1 AND external_subject = ?2", ["i", "s"]],
    "user by email (login)": ["SELECT id FROM users WHERE tenant_id = ?1 AND email = ?2", [tenantId, "x@y.example"]],
    "user page by status": ["SELECT id FROM users WHERE tenant_id = ?1 AND status = ?2 AND id > ?3 ORDER BY id LIMIT 51", [tenantId, "active", ""]],
  };
  for (const [name, [sql, binds]] of Object.entries(plans)) {
    const plan = (await db.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind(...binds).all()).results;
    const { meta } = await db.prepare(sql).bind(...binds).all();
    log(`  ${name}: ${plan.map((r) => r.detail).join(" | ")}; rows_read ${meta.rows_read}`);
  }
}

const table = (widths, rows) => rows.forEach((r) => log(r.map((c, i) => (i ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join(" ")));
const ms = (x) => x.toFixed(2);

function report(empty, scale, info) {
  log(`\n${TENANTS} tenants (${info.listed} listed), ${info.users} users (${info.big} tenants x ${USERS_PER}); latency in ms, one request in flight:`);
  table([22, 10, 8, 10, 8, 10, 10], [["route", "empty p50", "p99", "scale p50", "p99", "p50 ratio", "p99 ratio"],
    ...Object.keys(empty).map((k) => {
      const [e, s] = [empty[k].seq, scale[k].seq];
      return [k, ms(e.p50), ms(e.p99), ms(s.p50), ms(s.p99), (s.p50 / e.p50).toFixed(2), (s.p99 / e.p99).toFixed(2)];
    })]);
  log(`\nthroughput (req/s), c${CONC} = ${CONC} requests in flight, and response bytes:`);
  table([22, 10, 10, 10, 8, 10, 8, 18], [["route", "empty seq", "scale seq", `empty c${CONC}`, "p99 ms", `scale c${CONC}`, "p99 ms", "bytes empty/scale"],
    ...Object.keys(empty).map((k) => {
      const [e, s] = [empty[k], scale[k]];
      return [k, e.seq.rps.toFixed(0), s.seq.rps.toFixed(0), e.conc.rps.toFixed(0), ms(e.conc.p99), s.conc.rps.toFixed(0), ms(s.conc.p99), `${e.seq.bytes}/${s.seq.bytes}`];
    })]);
}

async function main() {
  setTimeout(() => {
    console.error(`tenants-scale: over MAX_SECONDS=${MAX_SECONDS}, stopping`);
    cleanup().finally(() => process.exit(1));
  }, MAX_SECONDS * 1000).unref();
  if (!fs.existsSync(path.join(ROOT, "worker/build/index.js"))) throw new Error("worker/build is missing: run `make worker`");
  const workerd = execFileSync(path.join(ROOT, "node_modules/.bin/workerd"), ["--version"]).toString().trim().split(/\s+/)[1];
  log(`machine: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}; node ${process.version}; workerd ${workerd}`);
  log(`date:    ${new Date().toISOString().slice(0, 16)}Z; load average ${os.loadavg()[0].toFixed(2)}`);
  log(`load:    ${N} requests per route after ${WARMUP} warm-up, one and ${CONC} in flight (Node fetch), on the same machine`);
  const issuer = devIssuer();
  token = issuer.token;

  log("\n==> near-empty: 5 tenants provisioned through the API, one suspended");
  base = await startServer(issuer.vars);
  const provisioned = [];
  for (let i = 0; i < 5; i++) {
    const { name, domain } = i === 0 ? { name: "Northwind Traders Ltd", domain: "northwind-api" } : tenantName(`api-${i}`);
    const body = JSON.stringify({ name, domain, plan: "pro", owner_email: `owner@${domain}.example` });
    provisioned.push(JSON.parse((await hit("/v1/tenants", { method: "POST", body })).body).tenant);
  }
  await hit(`/v1/tenants/${provisioned[1].id}/suspend`, { method: "POST", body: JSON.stringify({ reason: "bench" }) });
  const empty = await measure(await routesFor(5, provisioned.map((t) => t.id)));
  await stopServer();

  log(`\n==> seeding D1: ${TENANTS} tenants; ${USERS_PER} users in each of ${USER_TENANTS} active tenants, 1-20 in every other live one`);
  const seeded = await seedD1();
  const full = TENANTS * USERS_PER;
  if (seeded.big.length < TENANTS) {
    log(`  NOTE: ${USERS_PER} users in every tenant would be ${full / 1e6} M users, ~${(full * seeded.perUser / 2 ** 30).toFixed(1)} GiB and` +
      ` >= ${Math.round(full / (seeded.users / seeded.userSecs) / 60)} min at this rate: seeded ${USERS_PER} users in ${seeded.big.length} tenants instead`);
  }

  log("\n==> at scale");
  base = await startServer(issuer.vars);
  const listed = 5 + seeded.live.length;
  const lookups = seeded.big.concat(seeded.live.slice(0, 90)).map((t) => t.id);
  const scale = await measure(await routesFor(listed, lookups));
  await stopServer();
  report(empty, scale, { listed, users: seeded.users, big: seeded.big.length });
  log(`\nload average at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(" ")} (1, 5, 15 min)`);
}

let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    interrupted = true;
    cleanup().finally(() => process.exit(130));
  });
}
main().then(cleanup, async (e) => {
  if (interrupted) return; // the signal handler is cleaning up; requests in flight fail meanwhile
  console.error(`tenants-scale: ${e?.stack ?? e}`);
  const serverLog = path.join(tmp, "server.log");
  if (fs.existsSync(serverLog)) console.error(`harness log (tail):\n${fs.readFileSync(serverLog, "utf8").slice(-3000)}`);
  await cleanup();
  process.exit(1);
});
