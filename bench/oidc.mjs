#!/usr/bin/env node
// OpenID Connect provider benchmark (FR-AUTH-001): discovery and JWKS throughput, a
// whole authorization-code sign-in through the universal login page by HTTP (each step timed),
// the refresh grant and userinfo, on the built worker in workerd (tests/harness/workerd.mjs, no
// wrangler proxy hop). A benchmark, not a test: it prints figures for bench/RESULTS.md and fails
// only on errors.
//
//   node bench/oidc.mjs     after `make worker` (`make bench-oidc`); knobs: LOGINS (sign-ins and
//                           refreshes, default 50, after 3 warm-ups), DURATION (wrk, default
//                           10s), CONNECTIONS (default 10), MAX_SECONDS (default 600)
//
// Serves worker/build on a fresh state dir with a dev operator issuer and a random MASTER_KEY;
// as operator creates an app with a redirect URI and a client secret (a confidential client),
// a tenant with that app, and accepts its owner's invitation. Then, one at a time: LOGINS
// sign-ins (GET /oauth/authorize with PKCE S256 → organization step → password step, argon2id →
// 303 with the code → POST /oauth/token with client_secret_post), LOGINS refresh grants (each
// rotating the refresh token); then wrk on GET /health (the floor), the discovery document, the
// JWKS and GET /oauth/userinfo. Listens on 127.0.0.1 only; stops the harness by PID; the temp
// dir is removed.

import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { call, devIssuer, log, pct, runBench, startServer, stopServer } from "./lib.mjs";

const LOGINS = Number(process.env.LOGINS ?? 50);
const WARMUP = 3;
const DURATION = process.env.DURATION ?? "10s";
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 10);
const MAX_SECONDS = Number(process.env.MAX_SECONDS ?? 600);
const REDIRECT = "https://app.example/cb";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-oidc-bench-"));
let server;

const form = (fields) => new URLSearchParams(fields).toString();
const b64url = (buf) => Buffer.from(buf).toString("base64url");
const loadavg = () => os.loadavg().map((l) => l.toFixed(1)).join(" ");

/** A request that must answer `want`; resolves to the response and its body text. */
async function expect(base, want, method, route, { headers = {}, body } = {}) {
  const res = await fetch(base + route, { method, headers, body, redirect: "manual" });
  const text = await res.text();
  if (res.status !== want) throw new Error(`${method} ${route.split("?")[0]}: HTTP ${res.status}, expected ${want}: ${text.slice(0, 500)}`);
  return { res, text };
}

/** The value of the login page's hidden input `name` (HTML-escaped in the page). */
function hidden(html, name) {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no hidden ${name} in the login page: ${html.slice(0, 500)}`);
  return m[1].replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">").replaceAll("&amp;", "&");
}

/** One sign-in through the login page by HTTP; resolves to each step's milliseconds and the
 * token response. */
async function signIn(base, app, w) {
  const verifier = b64url(crypto.randomBytes(32));
  const state = b64url(crypto.randomBytes(12));
  const nonce = b64url(crypto.randomBytes(12));
  const query = form({
    client_id: app.client_id, redirect_uri: REDIRECT, response_type: "code",
    scope: "openid email offline_access", state, nonce,
    code_challenge: b64url(crypto.createHash("sha256").update(verifier).digest()),
    code_challenge_method: "S256",
  });
  const formHeaders = { "content-type": "application/x-www-form-urlencoded" };
  const ms = {};
  const t0 = performance.now();
  let t = t0;
  const lap = (step) => { const now = performance.now(); ms[step] = now - t; t = now; };

  const page = await expect(base, 200, "GET", `/oauth/authorize?${query}`);
  const flow = hidden(page.text, "flow");
  const csrf = hidden(page.text, "csrf");
  const cookie = page.res.headers.getSetCookie().find((c) => c.includes("ep_csrf_"))?.split(";")[0];
  if (!cookie) throw new Error("no CSRF cookie on the login page");
  lap("authorize");

  const headers = { ...formHeaders, cookie };
  const org = await expect(base, 200, "POST", "/oauth/authorize/tenant", { headers, body: form({ flow, csrf, tenant: w.domain }) });
  if (!org.text.includes('name="password"')) throw new Error("the organization step did not lead to the password step");
  lap("tenant");

  const login = await expect(base, 303, "POST", "/oauth/authorize/login",
    { headers, body: form({ flow, csrf, email: w.email, password: w.password }) });
  const location = new URL(login.res.headers.get("location") ?? "");
  if (`${location.origin}${location.pathname}` !== REDIRECT || location.searchParams.get("state") !== state) {
    throw new Error(`redirected to ${location}`);
  }
  const code = location.searchParams.get("code");
  if (!code) throw new Error(`no code in ${location}`);
  lap("login");

  const tok = await expect(base, 200, "POST", "/oauth/token", {
    headers: formHeaders,
    body: form({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier,
      client_id: app.client_id, client_secret: app.client_secret }),
  });
  const tokens = JSON.parse(tok.text);
  for (const k of ["access_token", "id_token", "refresh_token"]) {
    if (typeof tokens[k] !== "string") throw new Error(`token response without ${k}: ${tok.text.slice(0, 500)}`);
  }
  const claims = JSON.parse(Buffer.from(tokens.id_token.split(".")[1], "base64url").toString());
  if (claims.nonce !== nonce || claims.aud !== app.client_id) throw new Error(`ID token claims ${JSON.stringify(claims)}`);
  lap("token");
  ms.total = t - t0;
  return { ms, tokens };
}

/** wrk on one GET route with extra headers; its req/s, p50, p99 and non-2xx count. */
function wrk(base, route, headers = {}) {
  const script = path.join(tmp, "headers.lua");
  fs.writeFileSync(script, Object.entries(headers).map(([k, v]) => `wrk.headers["${k}"] = "${v}"\n`).join(""));
  const threads = Math.min(2, CONNECTIONS);
  const out = execFileSync("wrk", ["-t", String(threads), "-c", String(CONNECTIONS), "-d", DURATION, "--latency", "-s", script, base + route]).toString();
  const f = (re) => (re.exec(out) ?? [])[1];
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  return { rps: f(/Requests\/sec:\s+([\d.]+)/), p50: f(/\s50%\s+(\S+)/), p99: f(/\s99%\s+(\S+)/), non2xx: non2xx ? non2xx[1] : "0" };
}

const fmt = (v) => `${v.toFixed(1)} ms`;

async function main() {
  const issuer = devIssuer(tmp, MAX_SECONDS);
  server = await startServer({ ...issuer.vars, MASTER_KEY: crypto.randomBytes(32).toString("base64") },
    { tmp, state: path.join(tmp, "state"), maxSeconds: MAX_SECONDS });
  const base = server.url;
  log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), load ${loadavg()}; ${process.version}`);
  log(`date:    ${new Date().toISOString().slice(0, 16)}Z`);

  // The client (an app with a redirect URI and a secret) and a tenant whose owner has a password.
  const domain = `oidc-${crypto.randomBytes(4).toString("hex")}`;
  const w = { domain, email: `owner@${domain}.example`, password: "correct horse battery staple" };
  const created = await call(base, "POST", "/v1/apps", { name: `Bench ${domain}`, redirect_uris: [REDIRECT] }, issuer.token);
  const secret = await call(base, "POST", `/v1/apps/${created.id}/client-secret`, undefined, issuer.token);
  const app = { client_id: created.id, client_secret: secret.client_secret };
  const t = await call(base, "POST", "/v1/tenants",
    { name: "Bench OIDC", domain, plan: "pro", owner_email: w.email, apps: [app.client_id] }, issuer.token);
  await call(base, "POST", "/v1/invitations/accept",
    { token: new URL(t.invitation_link).searchParams.get("token"), password: w.password });

  // Sign-ins, one at a time (no queueing in the figures); the first few warm the isolate.
  const steps = { authorize: [], tenant: [], login: [], token: [], total: [] };
  let tokens;
  for (let i = 0; i < LOGINS + WARMUP; i++) {
    const r = await signIn(base, app, w);
    tokens = r.tokens;
    if (i >= WARMUP) for (const k of Object.keys(steps)) steps[k].push(r.ms[k]);
  }

  // Refresh grants, one at a time, each with the refresh token the previous one returned.
  const refresh = [];
  for (let i = 0; i < LOGINS + WARMUP; i++) {
    const t0 = performance.now();
    const r = await expect(base, 200, "POST", "/oauth/token", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form({ grant_type: "refresh_token", refresh_token: tokens.refresh_token,
        client_id: app.client_id, client_secret: app.client_secret }),
    });
    if (i >= WARMUP) refresh.push(performance.now() - t0);
    const next = JSON.parse(r.text);
    if (typeof next.access_token !== "string" || typeof next.refresh_token !== "string" || next.refresh_token === tokens.refresh_token) {
      throw new Error(`refresh: ${r.text.slice(0, 500)}`);
    }
    tokens = next;
  }

  // Correctness before load (every wrk run below then only counts non-2xx answers).
  const bearer = { authorization: `Bearer ${tokens.access_token}` };
  const info = JSON.parse((await expect(base, 200, "GET", "/oauth/userinfo", { headers: bearer })).text);
  if (info.email !== w.email) throw new Error(`userinfo: ${JSON.stringify(info)}`);
  const disco = JSON.parse((await expect(base, 200, "GET", "/.well-known/openid-configuration")).text);
  if (disco.issuer !== base) throw new Error(`discovery issuer ${disco.issuer}, served at ${base}`);
  const jwks = JSON.parse((await expect(base, 200, "GET", "/.well-known/jwks.json")).text);
  if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) throw new Error("an empty JWKS");

  log(`sequential: ${LOGINS} sign-ins and ${LOGINS} refreshes one at a time after ${WARMUP} warm-ups`);
  log(`${"sign-in step".padEnd(48)} ${"p50".padStart(9)} ${"p99".padStart(9)}`);
  const row = (name, xs) => {
    const s = [...xs].sort((a, b) => a - b);
    log(`${name.padEnd(48)} ${fmt(pct(s, 50)).padStart(9)} ${fmt(pct(s, 99)).padStart(9)}`);
  };
  row("GET /oauth/authorize (login page, flow, CSRF)", steps.authorize);
  row("POST /oauth/authorize/tenant (organization)", steps.tenant);
  row("POST /oauth/authorize/login (argon2id, 303)", steps.login);
  row("POST /oauth/token (code + PKCE + secret)", steps.token);
  row("whole sign-in", steps.total);
  row("POST /oauth/token (refresh_token, rotated)", refresh);

  log(`wrk: ${CONNECTIONS} connections, ${DURATION}`);
  log(`${"route".padEnd(48)} ${"req/s".padStart(9)} ${"p50".padStart(9)} ${"p99".padStart(9)}`);
  const routes = [
    ["GET /health (floor)", "/health", {}],
    ["GET /.well-known/openid-configuration", "/.well-known/openid-configuration", {}],
    ["GET /.well-known/jwks.json", "/.well-known/jwks.json", {}],
    ["GET /oauth/userinfo", "/oauth/userinfo", bearer],
  ];
  for (const [name, route, headers] of routes) {
    const r = wrk(base, route, headers);
    log(`${name.padEnd(48)} ${r.rps.padStart(9)} ${r.p50.padStart(9)} ${r.p99.padStart(9)}${r.non2xx !== "0" ? `  (${r.non2xx} non-2xx!)` : ""}`);
    if (r.non2xx !== "0") process.exitCode = 1;
  }
  log(`load after: ${loadavg()}`);
}

await runBench(main, tmp, async () => {
  await stopServer(server).catch(() => {});
});
