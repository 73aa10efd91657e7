#!/usr/bin/env node
// Authentication benchmark (NFR-PERF-004): sign-in latency (argon2id, m=19 MiB, t=2,
// p=1, in the real runtime) and token introspection throughput, on the built worker in workerd
// (tests/harness/workerd.mjs, no wrangler proxy hop). A benchmark, not a test: it prints figures
// for bench/RESULTS.md and fails only on errors.
//
//   node bench/auth.mjs     after `make worker`; knobs: LOGINS (default 100), DURATION (wrk,
//                           default 10s), CONNECTIONS (default 10), MAX_SECONDS (default 300)
//
// Serves worker/build on a fresh state dir with a dev operator issuer and a random MASTER_KEY,
// provisions a tenant, accepts its owner's invitation, times LOGINS sequential sign-ins, then
// loads POST /oauth/introspect with wrk. Listens on 127.0.0.1 only; the temp dir is removed.

import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { call, devIssuer, log, pct, runBench, startServer, stopServer } from "./lib.mjs";

const LOGINS = Number(process.env.LOGINS ?? 100);
const DURATION = process.env.DURATION ?? "10s";
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 10);
const MAX_SECONDS = Number(process.env.MAX_SECONDS ?? 300);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-auth-bench-"));
let server;

async function main() {
  const issuer = devIssuer(tmp, MAX_SECONDS);
  server = await startServer({ ...issuer.vars, MASTER_KEY: crypto.randomBytes(32).toString("base64") },
    { tmp, state: path.join(tmp, "state"), maxSeconds: MAX_SECONDS });
  const base = server.url;
  log(`machine: ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}; ${process.version}`);
  log(`date:    ${new Date().toISOString().slice(0, 16)}Z`);

  const domain = `bench-${crypto.randomBytes(4).toString("hex")}`;
  const email = `owner@${domain}.example`;
  const password = "correct horse battery staple";
  const t = await call(base, "POST", "/v1/tenants", { name: "Bench", domain, plan: "pro", owner_email: email }, issuer.token);
  const invitation = new URL(t.invitation_link).searchParams.get("token");
  await call(base, "POST", "/v1/invitations/accept", { token: invitation, password });
  const app = await call(base, "POST", "/v1/apps", { name: `Bench ${domain}` }, issuer.token);
  const key = await call(base, "POST", `/v1/apps/${app.id}/keys`, { scopes: ["token:introspect"] }, issuer.token);

  // Sign-in: one argon2id verification per request, sequential (no queueing in the figure).
  const lat = [];
  let access;
  for (let i = 0; i < LOGINS + 5; i++) {
    const t0 = performance.now();
    const pair = await call(base, "POST", "/v1/auth/login", { tenant: domain, email, password });
    if (i >= 5) lat.push(performance.now() - t0); // the first few warm the isolate
    access = pair.access_token;
  }
  lat.sort((a, b) => a - b);
  log(`login (argon2id m=19456 KiB t=2 p=1), ${LOGINS} sequential: p50 ${pct(lat, 50).toFixed(1)} ms  p99 ${pct(lat, 99).toFixed(1)} ms`);

  // Introspection: wrk, form body, app key.
  const script = path.join(tmp, "introspect.lua");
  fs.writeFileSync(script, [
    'wrk.method = "POST"',
    `wrk.body = "token=${access}"`,
    'wrk.headers["content-type"] = "application/x-www-form-urlencoded"',
    `wrk.headers["authorization"] = "Bearer ${key.secret}"`,
  ].join("\n"));
  const check = await fetch(`${base}/oauth/introspect`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${key.secret}` },
    body: `token=${access}`,
  }).then((r) => r.json());
  if (check.active !== true) throw new Error(`introspection says ${JSON.stringify(check)}`);
  const threads = Math.min(2, CONNECTIONS);
  // The floor on this machine at this moment: the liveness route (no storage, no crypto).
  const floor = execFileSync("wrk", ["-t", String(threads), "-c", String(CONNECTIONS), "-d", DURATION, "--latency", `${base}/health`]).toString();
  const f = (re) => (re.exec(floor) ?? [])[1];
  log(`GET /health floor (same load):         ${f(/Requests\/sec:\s+([\d.]+)/)} req/s  p50 ${f(/\s50%\s+(\S+)/)}  p99 ${f(/\s99%\s+(\S+)/)}`);
  const out = execFileSync("wrk", ["-t", String(threads), "-c", String(CONNECTIONS), "-d", DURATION, "--latency", "-s", script, `${base}/oauth/introspect`]).toString();
  const field = (re) => (re.exec(out) ?? [])[1];
  log(`introspect (wrk ${CONNECTIONS} connections, ${DURATION}): ${field(/Requests\/sec:\s+([\d.]+)/)} req/s  p50 ${field(/\s50%\s+(\S+)/)}  p99 ${field(/\s99%\s+(\S+)/)}${/Non-2xx/.test(out) ? `  (${field(/(Non-2xx.*)/)})` : ""}`);
}

await runBench(main, tmp, async () => {
  await stopServer(server).catch(() => {});
});
