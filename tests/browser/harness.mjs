// Starts what a browser test talks to, for one runtime: the development OpenID provider for
// operators and auditors (scripts/dev-idp.mjs) and Edgeplane wired to it, in workerd (through
// tests/harness/workerd.mjs) or in the Spin test host. The same vars as the Rust contract suite
// (tests/api/helpers.rs), plus the console's: both runtimes see one configuration.
//
// No Playwright here: fixtures.mjs turns a started stack into worker-scoped fixtures.

import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/** The repository's root directory. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Where runs leave logs, screenshots, traces (git-ignored under target/). */
export const OUTPUT_ROOT = path.join(REPO_ROOT, "target", "browser");
/** The runtimes the tests can run against, in `EDGEPLANE_RUNTIMES` order by default. */
export const RUNTIMES = ["workerd", "spin"];
/** The console's OpenID client at the development IdP. */
export const CONSOLE_CLIENT_ID = "edgeplane-console";
/** Where the IdP sends the browser back to, under Edgeplane's origin. */
export const CONSOLE_CALLBACK_PATH = "/console/auth/callback";
/** Edgeplane's console sign-in page, also where a sign-out from the IdP may return to. */
export const CONSOLE_SIGNIN_PATH = "/console/signin";

/** The demo accounts of scripts/dev-idp.mjs (its password is set per run). */
export const DEMO_ACCOUNTS = {
  operator: { email: "operator@operators.example", sub: "demo-operator", roles: ["operator"] },
  auditor: { email: "auditor@operators.example", sub: "demo-auditor", roles: ["auditor"] },
  nobody: { email: "nobody@operators.example", sub: "demo-nobody", roles: [] },
};

/** How long each server runs at most on its own, whatever happens to the test process. */
const SERVER_MAX_SECONDS = 1800;
/** How long a server may take to exit after its stdin closes, before it is signalled. */
const GRACEFUL_STOP_MS = 15_000;

const execFileP = promisify(execFile);

/** The runtimes of `EDGEPLANE_RUNTIMES` (comma-separated), default both; unknown names throw. */
export function selectedRuntimes(value = process.env.EDGEPLANE_RUNTIMES) {
  const names = (value ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) return [...RUNTIMES];
  for (const name of names) {
    if (!RUNTIMES.includes(name)) {
      throw new Error(`EDGEPLANE_RUNTIMES: unknown runtime ${JSON.stringify(name)} (known: ${RUNTIMES.join(", ")})`);
    }
  }
  return names;
}

/** A path from env `name`, else `dflt`; relative paths are taken from the repository root. */
function artifact(name, dflt) {
  const value = process.env[name] || dflt;
  return path.isAbsolute(value) ? value : path.join(REPO_ROOT, value);
}

function requireFile(file, how) {
  if (fs.existsSync(file)) return;
  const relative = path.relative(REPO_ROOT, file);
  throw new Error(`missing ${relative.startsWith("..") ? file : relative}: ${how}`);
}

/** A port on 127.0.0.1 that was free a moment ago: the IdP and Edgeplane must each know the other's. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Reads KEY=value lines as scripts/dev-issuer.mjs writes them (values in single quotes). */
function readEnvFile(file) {
  const vars = {};
  for (const line of fs.readFileSync(file, "utf8").split(/\r?\n/)) {
    const m = line.match(/^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/);
    if (!m) continue;
    let value = m[2];
    if (/^'.*'$/.test(value) || /^".*"$/.test(value)) value = value.slice(1, -1);
    vars[m[1]] = value;
  }
  return vars;
}

/** The application variables spin.toml declares: the Spin test host refuses any other `--var`. */
function spinVariables(manifest) {
  const names = new Set();
  let inVariables = false;
  for (const line of fs.readFileSync(manifest, "utf8").split(/\r?\n/)) {
    const header = line.match(/^\s*\[([^\]]+)\]\s*$/);
    if (header) inVariables = header[1].trim() === "variables";
    else if (inVariables) {
      const m = line.match(/^\s*([a-z][a-z0-9_]*)\s*=/);
      if (m) names.add(m[1]);
    }
  }
  return names;
}

/**
 * A child process with its first stdout line as the ready line; stderr and later stdout go to
 * `logFile`. It gets its own process group (Ctrl-C on the test run reaches it only through its
 * stdin closing) and is stopped by its PID.
 */
class Server {
  constructor(name, command, args, logFile, readyTimeoutMs) {
    this.name = name;
    this.logFile = logFile;
    this.log = fs.openSync(logFile, "a");
    this.note(`=== ${new Date().toISOString()} ${command} ${args.map((a) => JSON.stringify(a)).join(" ")}`);
    this.child = spawn(command, args, {
      cwd: REPO_ROOT,
      stdio: ["pipe", "pipe", this.log],
      detached: true,
      env: process.env,
    });
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => resolve({ code, signal })));
    this.ready = new Promise((resolve, reject) => {
      const lines = readline.createInterface({ input: this.child.stdout, crlfDelay: Infinity });
      let first = true;
      const timer = setTimeout(
        () => reject(new Error(`${name}: no ready line within ${readyTimeoutMs / 1000}s (see ${logFile})`)),
        readyTimeoutMs,
      );
      lines.on("line", (line) => {
        if (!first) {
          this.note(`[stdout] ${line}`);
          return;
        }
        first = false;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(line));
        } catch {
          reject(new Error(`${name}: ready line is not JSON: ${JSON.stringify(line)} (see ${logFile})`));
        }
      });
      this.child.on("error", (e) => {
        clearTimeout(timer);
        reject(new Error(`${name}: cannot start ${command}: ${e.message}`));
      });
      this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${signal ?? `status ${code}`}) before its ready line:\n${tail(logFile)}`));
      });
    });
    // A rejection nobody awaits yet (the stack awaits both servers in turn) is not a crash.
    this.ready.catch(() => {});
  }

  /** Closes stdin (both harnesses exit on EOF), then SIGTERM by PID, then SIGKILL its group. */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.close();
    this.child.stdin.end();
    let done = await Promise.race([this.exited, sleep(GRACEFUL_STOP_MS)]);
    if (!done) {
      this.note(`=== ${this.name} ignored stdin EOF: SIGTERM`);
      this.child.kill("SIGTERM");
      done = await Promise.race([this.exited, sleep(5_000)]);
    }
    if (!done) {
      this.note(`=== ${this.name} ignored SIGTERM: SIGKILL to its process group`);
      try {
        process.kill(-this.child.pid, "SIGKILL");
      } catch {
        // already gone
      }
      await this.exited;
    }
    this.close();
  }

  /** A line of the harness's own in the server's log. */
  note(line) {
    if (this.log !== undefined) fs.writeSync(this.log, `${line}\n`);
  }

  close() {
    if (this.log !== undefined) fs.closeSync(this.log);
    this.log = undefined;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(() => resolve(false), ms).unref());

function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

function readyTimeoutMs(runtime) {
  const secs = Number(process.env.EDGEPLANE_READY_TIMEOUT_SECS);
  if (Number.isFinite(secs) && secs > 0) return secs * 1000;
  // A debug-built Spin test host compiles the component with unoptimised Cranelift.
  return runtime === "spin" ? 180_000 : 60_000;
}

function edgeplaneCommand(runtime, state, port, vars, logDir) {
  if (runtime === "workerd") {
    const script = artifact("EDGEPLANE_WORKER_SCRIPT", "worker/build/index.js");
    requireFile(script, "build the worker with `make worker`");
    requireFile(path.join(REPO_ROOT, "node_modules/miniflare/package.json"), "install the npm tools with `npm ci`");
    const args = ["tests/harness/workerd.mjs", "--state", state, "--script", script, "--port", String(port)];
    args.push("--max-seconds", String(SERVER_MAX_SECONDS));
    for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}=${value}`);
    return ["node", args];
  }
  const host = artifact(
    "SPIN_TEST_HOST",
    path.join(os.homedir(), ".cache/edgeplane/spin-host-target/debug/spin-test-host"),
  );
  requireFile(host, "build the Spin test host with `make spin-host`");
  const wasm = artifact("EDGEPLANE_SPIN_WASM", "target/wasm32-wasip2/release/edgeplane_spin.wasm");
  requireFile(wasm, "build the Spin component with `make spin`");
  const manifest = path.join(REPO_ROOT, "spin.toml");
  const declared = spinVariables(manifest);
  const args = ["--manifest", manifest, "--wasm", wasm, "--state-dir", state, "--listen", `127.0.0.1:${port}`];
  args.push("--max-seconds", String(SERVER_MAX_SECONDS));
  const skipped = [];
  // Spin variables are lowercase; the ports read them by their environment names.
  for (const [name, value] of Object.entries(vars)) {
    const spinName = name.toLowerCase();
    if (declared.has(spinName)) args.push("--var", `${spinName}=${value}`);
    else skipped.push(spinName);
  }
  if (skipped.length > 0) {
    // Not fatal: a variable the console needs and spin.toml lacks shows up as a failing test,
    // and this line in the log says why.
    fs.appendFileSync(
      path.join(logDir, "edgeplane.log"),
      `=== not declared in spin.toml [variables], not passed: ${skipped.join(", ")}\n`,
    );
  }
  return [host, args];
}

/**
 * Starts the development IdP and Edgeplane for `runtime`, wired to each other, on fresh ports,
 * keys and state. Logs go to `logDir` (default `target/browser/<runtime>/`). Returns what the
 * tests need and `stop()`.
 *
 * `host` names Edgeplane's origin (`PUBLIC_BASE_URL`, what the browser opens); it listens on
 * 127.0.0.1 either way. Browsers refuse WebAuthn on an IP address, so passkey tests use
 * `localhost`.
 */
export async function startStack(runtime, { host = "127.0.0.1", logDir = path.join(OUTPUT_ROOT, runtime) } = {}) {
  if (!RUNTIMES.includes(runtime)) throw new Error(`unknown runtime ${runtime}`);
  fs.mkdirSync(logDir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `edgeplane-browser-${runtime}-`));
  const servers = [];
  const stop = async () => {
    for (const server of servers.reverse()) await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  try {
    // Both ports first: the IdP's redirect URI names Edgeplane's, Edgeplane's issuer the IdP's.
    const idpPort = await freePort();
    let edgeplanePort = await freePort();
    while (edgeplanePort === idpPort) edgeplanePort = await freePort();
    const issuer = `http://127.0.0.1:${idpPort}`;
    const baseURL = `http://${host}:${edgeplanePort}`;
    const listenURL = `http://127.0.0.1:${edgeplanePort}`;

    const envFile = path.join(tmp, "operator-issuer.env");
    const { stdout } = await execFileP("node", ["scripts/dev-issuer.mjs", "keygen", "--issuer", issuer], {
      cwd: REPO_ROOT,
    });
    fs.writeFileSync(envFile, stdout, { mode: 0o600 });
    const issuerVars = readEnvFile(envFile);

    const clientSecret = randomBytes(24).toString("hex");
    const password = process.env.EDGEPLANE_DEV_IDP_PASSWORD || "edgeplane-dev";
    const idp = new Server(
      "dev-idp",
      "node",
      [
        "scripts/dev-idp.mjs",
        "--env-file", envFile,
        "--port", String(idpPort),
        "--redirect-uri", `${baseURL}${CONSOLE_CALLBACK_PATH}`,
        "--post-logout-redirect-uri", `${baseURL}${CONSOLE_SIGNIN_PATH}`,
        "--client-id", CONSOLE_CLIENT_ID,
        "--client-secret", clientSecret,
        "--password", password,
        "--max-seconds", String(SERVER_MAX_SECONDS),
      ],
      path.join(logDir, "idp.log"),
      30_000,
    );
    servers.push(idp);

    const cronSecret = randomBytes(24).toString("hex");
    // What tests/api/helpers.rs passes, then the console's sign-in.
    const vars = {
      EDGEPLANE_ENV: "development",
      OPERATOR_ISSUER: issuerVars.OPERATOR_ISSUER,
      OPERATOR_AUDIENCE: issuerVars.OPERATOR_AUDIENCE,
      OPERATOR_DEV_JWKS: issuerVars.OPERATOR_DEV_JWKS,
      CRON_SECRET: cronSecret,
      MASTER_KEY: randomBytes(32).toString("base64"),
      SSO_IDP_ORIGINS: "http://127.0.0.1:*",
      // Redirects (the console's callback URL) from configuration, not from the Host header.
      PUBLIC_BASE_URL: baseURL,
      OPERATOR_CONSOLE_CLIENT_ID: CONSOLE_CLIENT_ID,
      OPERATOR_CONSOLE_CLIENT_SECRET: clientSecret,
      OPERATOR_CONSOLE_SCOPES: "openid email profile roles",
    };
    if (runtime === "spin") {
      // The suite stands in for the proxy in front of Spin (X-Forwarded-For), and Spin grants
      // outbound hosts statically: the console's code exchange and key fetch go to the IdP.
      vars.TRUSTED_PROXIES = "127.0.0.1";
      // ... and names the client's country as Cloudflare in front of Spin would (tenant-risk).
      vars.LOCATION_COUNTRY_HEADER = "CF-IPCountry";
      vars.OPERATOR_IDP_ORIGIN = issuer;
      vars.OPERATOR_JWKS_ORIGIN = issuer;
    } else {
      vars.EVENT_FLUSH_DELAY_MS = "2000";
    }
    const state = path.join(tmp, "state");
    fs.mkdirSync(state);
    const [command, args] = edgeplaneCommand(runtime, state, edgeplanePort, vars, logDir);
    const edgeplane = new Server("edgeplane", command, args, path.join(logDir, "edgeplane.log"), readyTimeoutMs(runtime));
    servers.push(edgeplane);

    const idpReady = await idp.ready;
    if (idpReady.issuer !== issuer) throw new Error(`dev-idp announced ${idpReady.issuer}, expected ${issuer}`);
    const edgeplaneReady = await edgeplane.ready;
    if (edgeplaneReady.url !== listenURL) {
      throw new Error(`${runtime} announced ${edgeplaneReady.url}, expected ${listenURL}`);
    }

    return {
      runtime,
      baseURL,
      idp: { issuer, origin: issuer, clientId: CONSOLE_CLIENT_ID, clientSecret },
      password,
      cronSecret,
      envFile,
      logDir,
      /** A bearer token for the JSON API, as `role`'s demo account (`operator` or `auditor`). */
      async operatorToken(role) {
        const account = DEMO_ACCOUNTS[role];
        if (role !== "operator" && role !== "auditor") throw new Error(`operatorToken: no API role ${role}`);
        const { stdout: token } = await execFileP(
          "node",
          [
            "scripts/dev-issuer.mjs", "token",
            "--role", role,
            "--sub", account.sub,
            "--email", account.email,
            "--env-file", envFile,
          ],
          { cwd: REPO_ROOT },
        );
        return token.trim();
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
