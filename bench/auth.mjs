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
// provisions a tenant, accepts its owner's invitation, times LOGINS sequential sign-ins (with
// what their risk check took, from the worker's log lines), then loads POST /oauth/introspect
// with wrk. Listens on 127.0.0.1 only; the temp dir is removed.

import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { call, devIssuer, log, pct, runBench, sleep, startServer, stopServer } from "./lib.mjs";

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
  // Each measured login has a request id of its own, so its log line can be found.
  const lat = [];
  const ids = new Set();
  let access;
  for (let i = 0; i < LOGINS + 5; i++) {
    const requestId = `bench-login-${i}`;
    const t0 = performance.now();
    const res = await fetch(`${base}/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": requestId },
      body: JSON.stringify({ tenant: domain, email, password }),
    });
    const pair = await res.json();
    if (!res.ok) throw new Error(`login: HTTP ${res.status} ${JSON.stringify(pair)}`);
    if (i >= 5) { // the first few warm the isolate
      lat.push(performance.now() - t0);
      ids.add(requestId);
    }
    access = pair.access_token;
  }
  lat.sort((a, b) => a - b);
  const figures = (v) => `p50 ${pct(v, 50).toFixed(1)} ms  p95 ${pct(v, 95).toFixed(1)} ms  p99 ${pct(v, 99).toFixed(1)} ms`;
  log(`login (argon2id m=19456 KiB t=2 p=1), ${LOGINS} sequential: ${figures(lat)}  (client side)`);
  // What the risk check (NFR-SEC-006) adds to each of those sign-ins: the `risk_ms` of their
  // request lines in the worker's log (on Workers the clock moves only across I/O, so this is
  // the check's storage time), beside the whole request as the worker saw it.
  const lines = await requestLines(path.join(tmp, "server.log"), ids);
  const risk = lines.map((l) => l.risk_ms).sort((a, b) => a - b);
  const served = lines.map((l) => l.duration_ms).sort((a, b) => a - b);
  if (risk.length !== LOGINS) throw new Error(`${risk.length} of ${LOGINS} login lines carry risk_ms`);
  log(`  its risk check (risk_ms of the log lines): ${figures(risk)}`);
  log(`  the whole login in the worker (duration_ms): ${figures(served)}`);

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

/** The request lines of the worker's log (the harness's stderr, in `file`) whose request id is
 * in `ids` and that carry `risk_ms`; waits up to 5 s for the log to catch up. */
async function requestLines(file, ids) {
  for (let tries = 0; ; tries++) {
    const found = fs.readFileSync(file, "utf8").split("\n").flatMap((text) => {
      const at = text.indexOf("{");
      if (at < 0) return [];
      try {
        const l = JSON.parse(text.slice(at));
        return l.msg === "request" && ids.has(l.request_id) && Number.isInteger(l.risk_ms) ? [l] : [];
      } catch {
        return [];
      }
    });
    if (found.length >= ids.size || tries >= 50) return found;
    await sleep(100);
  }
}

await runBench(main, tmp, async () => {
  await stopServer(server).catch(() => {});
});
