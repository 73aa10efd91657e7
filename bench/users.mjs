#!/usr/bin/env node
// Tenant user list benchmark (FR-TENANT-004 with 10,000 users in one tenant): latency and
// throughput of GET /v1/tenant/users on the built worker in workerd (tests/harness/workerd.mjs,
// no wrangler proxy hop). A benchmark, not a test: it prints figures for bench/RESULTS.md and
// fails only on errors.
//
//   node bench/users.mjs    after `make worker` (`make bench-users`); knobs: USERS (default
//                           10000), SEQUENTIAL (default 200), DURATION (wrk, default 10s),
//                           CONNECTIONS (default 10), MAX_SECONDS (default 600)
//
// 1. Serves worker/build on a fresh state dir with a dev operator issuer, provisions a tenant
//    and accepts its owner's invitation through the API, then stops the harness.
// 2. Seeds USERS users into that tenant straight into local D1 through a Miniflare of its own
//    on the same state dir (getD1Database, multi-row INSERTs; no API calls: inviting 10,000
//    users through the API would measure the mailer, not the list). Statuses: 80 % active,
//    10 % disabled, 10 % invited; 5 % admins.
// 3. Serves the same state again, signs the owner in and loads, with wrk, the first page, a deep
//    page (cursor at 90 % of the tenant), a status filter and an email prefix search. Every one
//    of those requests also writes its `user.list` audit row (CON-SEC-002), as in production.
// Listens on 127.0.0.1 only; stops the harness by PID; the temp dir is removed.

import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Miniflare } from "miniflare";
import { ROOT, call, devIssuer, log, pct, runBench, startServer, stopServer } from "./lib.mjs";

const USERS = Number(process.env.USERS ?? 10000);
const DURATION = process.env.DURATION ?? "10s";
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 10);
const MAX_SECONDS = Number(process.env.MAX_SECONDS ?? 600);
const SEQUENTIAL = Number(process.env.SEQUENTIAL ?? 200);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-users-bench-"));
const state = path.join(tmp, "state");
const serve = (vars) => startServer(vars, { tmp, state, maxSeconds: MAX_SECONDS });
let server;
let seeder;

const lit = (v) => (v === null ? "NULL" : typeof v === "number" ? String(v) : `'${String(v).replaceAll("'", "''")}'`);

/** Seeds the users through a Miniflare of its own on the stopped harness's state (the D1
 * binding of wrangler.toml): 200 literal rows per INSERT, 2,000 rows per batch. */
async function seedUsers(tenantId) {
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
  const now = Date.now();
  const rows = [];
  for (let i = 0; i < USERS; i++) {
    const status = i % 10 === 3 ? "disabled" : i % 10 === 7 ? "invited" : "active";
    const role = i % 20 === 5 ? "admin" : "user";
    rows.push([crypto.randomUUID(), tenantId, `user${String(i).padStart(5, "0")}@bench.example`, role, status,
      status === "invited" ? null : "$argon2id$v=19$m=19456,t=2,p=1$c2VlZA$seeded", now, now]);
  }
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i += 2000) {
    const stmts = [];
    for (let j = i; j < Math.min(i + 2000, rows.length); j += 200) {
      const values = rows.slice(j, Math.min(j + 200, i + 2000, rows.length)).map((r) => `(${r.map(lit).join(", ")})`);
      stmts.push(db.prepare(`INSERT INTO users (id, tenant_id, email, role, status, password_hash, created_at, updated_at) VALUES ${values.join(",\n")}`));
    }
    await db.batch(stmts);
  }
  const secs = (performance.now() - t0) / 1000;
  const n = await db.prepare("SELECT count(*) AS n FROM users WHERE tenant_id = ?1").bind(tenantId).first();
  await seeder.dispose();
  seeder = undefined;
  log(`seeded:  ${USERS} users in ${secs.toFixed(1)} s (straight into local D1); the tenant holds ${n.n}`);
  return rows.map((r) => r[0]).sort();
}

function wrk(base, route, token) {
  const script = path.join(tmp, "auth.lua");
  fs.writeFileSync(script, `wrk.headers["authorization"] = "Bearer ${token}"\n`);
  const threads = Math.min(2, CONNECTIONS);
  const out = execFileSync("wrk", ["-t", String(threads), "-c", String(CONNECTIONS), "-d", DURATION, "--latency", "-s", script, base + route]).toString();
  const f = (re) => (re.exec(out) ?? [])[1];
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  return { rps: f(/Requests\/sec:\s+([\d.]+)/), p50: f(/\s50%\s+(\S+)/), p99: f(/\s99%\s+(\S+)/), non2xx: non2xx ? non2xx[1] : "0" };
}

async function main() {
  const issuer = devIssuer(tmp, MAX_SECONDS);
  const vars = { ...issuer.vars, MASTER_KEY: crypto.randomBytes(32).toString("base64") };
  server = await serve(vars);
  let base = server.url;
  log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}; ${process.version}`);
  log(`date:    ${new Date().toISOString().slice(0, 16)}Z`);
  const domain = `users-${crypto.randomBytes(4).toString("hex")}`;
  const email = `owner@${domain}.example`;
  const password = "correct horse battery staple";
  const t = await call(base, "POST", "/v1/tenants", { name: "Bench Users", domain, plan: "pro", owner_email: email }, issuer.token);
  await call(base, "POST", "/v1/invitations/accept", { token: new URL(t.invitation_link).searchParams.get("token"), password });
  await stopServer(server);

  const ids = await seedUsers(t.tenant.id);
  server = await serve(vars);
  base = server.url;
  const { access_token: token } = await call(base, "POST", "/v1/auth/login", { tenant: domain, email, password });
  const deepId = ids[Math.floor(ids.length * 0.9)];
  const deepCursor = Buffer.from(`i:${deepId}`).toString("base64url");
  const cases = [
    ["first page (limit 50)", "/v1/tenant/users?limit=50"],
    ["deep page (cursor at 90 %)", `/v1/tenant/users?limit=50&cursor=${deepCursor}`],
    ["status=disabled (limit 50)", "/v1/tenant/users?status=disabled&limit=50"],
    ["email prefix q=user09 (limit 50)", "/v1/tenant/users?q=user09&limit=50"],
  ];
  for (const [name, route] of cases) {
    const page = await call(base, "GET", route, null, token); // correctness before load
    if (!Array.isArray(page.items) || page.items.length !== 50) throw new Error(`${name}: ${page.items?.length} items`);
    if (route.includes("q=") && !page.items.every((u) => u.email.startsWith("user09"))) throw new Error(`${name}: wrong rows`);
    if (route.includes("status=") && !page.items.every((u) => u.status === "disabled")) throw new Error(`${name}: wrong rows`);
  }
  // References in the same run: the floor (no token, no storage) and an owner/admin read with
  // the same authentication but one D1 read and no audit write (the password policy).
  const refs = [["GET /health (floor)", "/health"], ["GET /v1/tenant/password-policy (ref)", "/v1/tenant/password-policy"]];
  log(`sequential: ${SEQUENTIAL} requests one at a time after 20 warm-up; wrk: ${CONNECTIONS} connections, ${DURATION}`);
  log(`${"route".padEnd(38)} ${"seq p50".padStart(8)} ${"seq p99".padStart(8)}   wrk req/s   wrk p50   wrk p99`);
  for (const [name, route] of [...refs, ...cases]) {
    const lat = [];
    for (let i = 0; i < SEQUENTIAL + 20; i++) {
      let t0 = performance.now();
      let res;
      for (let attempt = 0; ; attempt++) {
        try {
          res = await fetch(base + route, { headers: { authorization: `Bearer ${token}` } });
          break;
        } catch (e) {
          // A keep-alive socket the server closed after a wrk run: retry once on a fresh one.
          if (attempt >= 2) throw e;
          t0 = performance.now();
        }
      }
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`${route}: HTTP ${res.status}`);
      if (i >= 20) lat.push(performance.now() - t0);
    }
    lat.sort((a, b) => a - b);
    const r = wrk(base, route, token);
    log(`${name.padEnd(38)} ${pct(lat, 50).toFixed(1).padStart(6)}ms ${pct(lat, 99).toFixed(1).padStart(6)}ms   ${r.rps.padStart(9)}   ${r.p50.padStart(7)}   ${r.p99.padStart(7)}${r.non2xx !== "0" ? `  (${r.non2xx} non-2xx!)` : ""}`);
    if (r.non2xx !== "0") process.exitCode = 1;
  }
  log(`load after: ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
}

await runBench(main, tmp, async () => {
  await seeder?.dispose().catch(() => {});
  await stopServer(server).catch(() => {});
});
