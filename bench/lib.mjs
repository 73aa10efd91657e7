// What the benchmarks that serve the built worker share: a dev operator issuer, the harness
// (tests/harness/workerd.mjs) started and stopped by PID, JSON calls, percentiles.
// Each benchmark owns its temp dir and passes it (and its state dir and time budget) in.

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

/** The repository root (scripts and the harness are run from there). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Prints one line to stdout. */
export const log = (s = "") => process.stdout.write(`${s}\n`);

/** Resolves after `ms`; the timer does not keep the process alive. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/** The `p`th percentile of an ascending array (nearest rank). */
export const pct = (sorted, p) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];

/** A dev operator issuer (scripts/dev-issuer.mjs): the worker's vars that trust it, written
 * under `tmp`, an operator token valid a minute longer than `maxSeconds`, and `tokenFor(role)`
 * for other platform roles (`auditor`). */
export function devIssuer(tmp, maxSeconds) {
  const envFile = path.join(tmp, "issuer.env");
  const issuer = (...a) => execFileSync(process.execPath, ["scripts/dev-issuer.mjs", ...a], { cwd: ROOT }).toString();
  fs.writeFileSync(envFile, issuer("keygen"));
  const vars = Object.fromEntries(fs.readFileSync(envFile, "utf8").split("\n")
    .filter((l) => l.includes("=") && !l.startsWith("OPERATOR_DEV_PRIVATE_JWK"))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).replace(/^'|'$/g, "")]));
  const tokenFor = (role) => issuer("token", "--role", role, "--sub", "bench", "--ttl", String(maxSeconds + 60), "--env-file", envFile).trim();
  return { vars, token: tokenFor("operator"), tokenFor };
}

/** Starts `command args` (cwd: the repository root; stderr appended to `<tmp>/<logName>`) and
 * waits for its one-line JSON ready protocol (tests/harness/workerd.mjs, tests/spin-host).
 * Resolves to `{ url, ready, proc, exited }` (`ready`: the ready line, parsed); if it is not
 * ready within 60 s it is stopped and this rejects. */
export async function startReady(command, args, { tmp, logName = "server.log" }) {
  const errFd = fs.openSync(path.join(tmp, logName), "a");
  const proc = spawn(command, args, { cwd: ROOT, stdio: ["pipe", "pipe", errFd] });
  fs.closeSync(errFd);
  const server = { url: null, ready: null, proc, exited: new Promise((r) => proc.once("exit", r)) };
  const ready = new Promise((r) => readline.createInterface({ input: proc.stdout }).once("line", r));
  const line = await Promise.race([ready, server.exited.then(() => null), sleep(60_000).then(() => null)]);
  if (!line) {
    await stopServer(server);
    throw new Error(`${path.basename(command)} did not print its ready line within 60 s (see ${logName})`);
  }
  server.ready = JSON.parse(line);
  server.url = server.ready.url;
  return server;
}

/** Starts the harness on `state` with `vars` (its stderr appended to `<tmp>/server.log`), for at
 * most `maxSeconds`, with any further harness `args` (`["--floor", file]`); see `startReady`. */
export async function startServer(vars, { tmp, state, maxSeconds, args: extra = [] }) {
  const args = ["tests/harness/workerd.mjs", "--state", state, "--max-seconds", String(maxSeconds), ...extra];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}=${v}`);
  return startReady(process.execPath, args, { tmp });
}

/** Closes the harness's stdin (it disposes Miniflare and exits), then SIGTERM, then SIGKILL, by PID. */
export async function stopServer(server) {
  const proc = server?.proc;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  proc.stdin.end();
  for (const signal of [null, "SIGTERM", "SIGKILL"]) {
    if (signal) try { process.kill(proc.pid, signal); } catch { break; }
    if ((await Promise.race([server.exited, sleep(15_000).then(() => "timeout")])) !== "timeout") break;
  }
}

/** A JSON request; throws on a non-2xx answer, else resolves to the parsed body (or null). */
export async function call(base, method, route, body, bearer) {
  const headers = { "content-type": "application/json" };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  const res = await fetch(base + route, { method, headers, body: body && JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route}: HTTP ${res.status} ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

/** Runs a benchmark's `main`: on an error prints the tail of `<tmp>/server.log` and the error and
 * sets a failing exit code; always runs `cleanup` (stop servers by PID) and removes `tmp`. */
export async function runBench(main, tmp, cleanup = async () => {}) {
  try {
    await main();
  } catch (e) {
    const logFile = path.join(tmp, "server.log");
    if (fs.existsSync(logFile)) process.stderr.write(fs.readFileSync(logFile, "utf8").slice(-4000));
    process.stderr.write(`${e.stack ?? e}\n`);
    process.exitCode = 1;
  } finally {
    await cleanup().catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
