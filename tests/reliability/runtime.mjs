// The runtime the reliability checks kill: the built worker in workerd through
// tests/harness/workerd.mjs, in a process group of its own so SIGKILL reaches workerd as well
// as the harness, restarted on the same state (and, when asked, on the same port, so a client
// that keeps one base URL sees an outage and a recovery rather than a new server).
//
// Servers listen on 127.0.0.1 only and are stopped by their process group id.

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Pacing timers keep the process alive (while the server is down they are all that is pending). */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Time limits raced against a process do not keep it alive. */
export const limit = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/** A loopback port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A deterministic pseudo-random sequence in [0, 1), so a failing run can be repeated by its seed. */
export function seeded(seed) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

export class Runtime {
  /**
   * @param {object} o
   * @param {string} o.tmp        a scratch directory of the run (state and log go there)
   * @param {Record<string,string>} o.vars  worker vars
   * @param {number} [o.port]     a fixed port (0: any, a new one at each start)
   * @param {number} o.maxSeconds the harness's own time limit
   */
  constructor({ tmp, vars, port = 0, maxSeconds }) {
    this.tmp = tmp;
    this.state = path.join(tmp, "state");
    this.vars = vars;
    this.port = port;
    this.maxSeconds = maxSeconds;
    this.server = undefined; // { child, base }
    this.logFile = path.join(tmp, "server.log");
  }

  /** The base URL of the running server. */
  get base() {
    if (!this.server) throw new Error("server down");
    return this.server.base;
  }

  async start() {
    const args = ["tests/harness/workerd.mjs", "--state", this.state, "--max-seconds", String(this.maxSeconds)];
    if (this.port) args.push("--port", String(this.port));
    for (const [k, v] of Object.entries(this.vars)) args.push("--var", `${k}=${v}`);
    // A port just released by a killed server is normally free at once; a few tries cover the
    // rare case where it is not yet.
    for (let attempt = 1; ; attempt++) {
      const errFd = fs.openSync(this.logFile, "a");
      const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["pipe", "pipe", errFd], detached: true });
      fs.closeSync(errFd);
      child.exitedP = new Promise((r) => child.once("exit", r));
      const ready = new Promise((r) => readline.createInterface({ input: child.stdout }).once("line", r));
      const line = await Promise.race([ready, child.exitedP.then(() => null), limit(60_000).then(() => null)]);
      if (line) {
        this.server = { child, base: JSON.parse(line).url };
        return;
      }
      try { process.kill(-child.pid, "SIGKILL"); } catch { /* gone */ }
      if (!this.port || attempt >= 5) {
        throw new Error(`the harness did not start:\n${fs.readFileSync(this.logFile, "utf8").slice(-2000)}`);
      }
      await sleep(200 * attempt);
    }
  }

  /** SIGKILL of the whole process group: no shutdown of any kind. */
  async kill() {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    try { process.kill(-s.child.pid, "SIGKILL"); } catch { /* already gone */ }
    await Promise.race([s.child.exitedP, limit(10_000)]);
  }

  /** A clean stop (stdin EOF), SIGKILL after 15 s. */
  async stop() {
    const s = this.server;
    this.server = undefined;
    if (!s || s.child.exitCode !== null) return;
    s.child.stdin.end();
    if ((await Promise.race([s.child.exitedP, limit(15_000).then(() => "timeout")])) === "timeout") {
      try { process.kill(-s.child.pid, "SIGKILL"); } catch { /* gone */ }
    }
  }

  async call(method, route, { bearer, apiKey, body } = {}) {
    const headers = { "content-type": "application/json" };
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    if (apiKey) headers["x-api-key"] = apiKey;
    const res = await fetch(this.base + route, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    return { status: res.status, text, headers: res.headers };
  }

  async must(method, route, opts, status = 200) {
    const r = await this.call(method, route, opts);
    if (r.status !== status) throw new Error(`${method} ${route}: HTTP ${r.status} ${r.text.slice(0, 500)}`);
    return r;
  }

  /** Runs the scheduled job (archive flushes), as the cron trigger would. */
  scheduled() {
    return this.must("POST", "/internal/scheduled", { bearer: this.vars.CRON_SECRET, body: { cron: "reliability" } });
  }

  /** Every event of `kind` the API exports for `apiKey`'s tenant, counted by `keyOf(event)`. */
  async exported(kind, apiKey, keyOf) {
    const seen = new Map();
    let cursor = null;
    let pages = 0;
    do {
      const r = await this.must("GET", `/v1/${kind}/events?limit=1000${cursor ? `&cursor=${cursor}` : ""}`, { apiKey });
      const page = JSON.parse(r.text);
      for (const e of page.items) {
        const k = keyOf(e);
        seen.set(k, (seen.get(k) ?? 0) + 1);
      }
      cursor = page.next_cursor;
      pages++;
    } while (cursor);
    return { seen, pages };
  }
}

/**
 * An operator issuer made for the run (scripts/dev-issuer.mjs): the vars that make the worker
 * trust it, and operator and auditor tokens valid for `ttlSeconds`.
 */
export function devIssuer(tmp, ttlSeconds) {
  const envFile = path.join(tmp, "issuer.env");
  const issuer = (...a) => execFileSync(process.execPath, ["scripts/dev-issuer.mjs", ...a], { cwd: ROOT }).toString();
  fs.writeFileSync(envFile, issuer("keygen"));
  const v = Object.fromEntries(fs.readFileSync(envFile, "utf8").split("\n")
    .filter((l) => l.includes("=") && !l.startsWith("OPERATOR_DEV_PRIVATE_JWK"))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).replace(/^'|'$/g, "")]));
  const token = (role) => issuer("token", "--role", role, "--sub", "reliability", "--ttl", String(ttlSeconds), "--env-file", envFile).trim();
  return { vars: v, operator: token("operator"), auditor: token("auditor") };
}

/** An app, a tenant with it enabled, and an API key of that app for the tenant with `scopes`. */
export async function seedTenant(rt, operator, scopes, name = "Reliability") {
  const domain = name.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  const app = JSON.parse((await rt.must("POST", "/v1/apps", { bearer: operator, body: { name } }, 201)).text);
  const tenant = JSON.parse((await rt.must("POST", "/v1/tenants", {
    bearer: operator, body: { name, domain, plan: "pro", owner_email: `o@${domain}.example`, apps: [app.id] },
  }, 201)).text).tenant;
  const key = JSON.parse((await rt.must("POST", `/v1/apps/${app.id}/keys`, {
    bearer: operator, body: { scopes, tenant_id: tenant.id },
  }, 201)).text).secret;
  return { app, tenant, key };
}
