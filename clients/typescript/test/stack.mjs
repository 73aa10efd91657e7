// The real Edgeplane the tests talk to: the built worker in workerd (tests/harness/workerd.mjs)
// with fresh state, an operator issuer made for the run (scripts/dev-issuer.mjs), and a seeded
// tenant with an owner who accepted the invitation, an app enabled for it and an API key of
// that app holding every scope: what `make dev` seeds (scripts/dev.sh).
//
// test/run.mjs starts one stack for every test file and hands it over in EDGEPLANE_TEST_STACK;
// a file run alone (`node --test test/events.test.mjs`) starts its own through useStack().

import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { after } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { ALL_SCOPES, call, provisionTenant, seedApp } from "../../../tests/harness/seed.mjs";

export { ALL_SCOPES, call, provisionTenant };

const execFileP = promisify(execFile);
const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository's root. */
export const REPO_ROOT = path.resolve(HERE, "..", "..", "..");
/** The seeded app's redirect URI (nothing listens there: the tests read the redirect). */
export const REDIRECT_URI = "http://127.0.0.1:3000/callback";
/** The seeded app's browser origin. */
export const ORIGIN = "http://127.0.0.1:3000";

const READY_TIMEOUT_MS = 60_000;

/** A loopback port that was free a moment ago: the issuer (PUBLIC_BASE_URL) must name it. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** KEY=value lines as dev-issuer.mjs writes them (values in single quotes). */
function readEnv(text) {
  const vars = {};
  for (const line of text.split(/\r?\n/)) {
    const m = line.match(/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/);
    if (m) vars[m[1]] = m[2].replace(/^'(.*)'$/, "$1");
  }
  return vars;
}

/** Mints an operator token with the run's development issuer. */
export async function operatorToken(issuerEnvFile, sub = "client-tests") {
  const { stdout } = await execFileP(
    process.execPath,
    ["scripts/dev-issuer.mjs", "token", "--role", "operator", "--sub", sub, "--env-file", issuerEnvFile],
    { cwd: REPO_ROOT },
  );
  return stdout.trim();
}

/** Signs the seeded owner in (`POST /v1/auth/login`); resolves to the token pair. */
export function signIn(stack) {
  return call(stack.baseUrl, "POST", "/v1/auth/login", {
    body: { tenant: stack.tenantDomain, email: stack.ownerEmail, password: stack.ownerPassword },
    status: 200,
  });
}

/** Seeds the tenant, its owner, the app and its key (tests/harness/seed.mjs). */
async function seed(baseUrl, issuerEnvFile) {
  const seeded = await seedApp({
    baseUrl,
    operatorToken: await operatorToken(issuerEnvFile),
    redirectUris: [REDIRECT_URI],
    allowedOrigins: [ORIGIN],
  });
  return { ...seeded, issuerEnvFile };
}

/**
 * Starts workerd with fresh state (in `dir`) and seeds it. Resolves to `{stack, stop, logFile,
 * dir, ready, send}`; `stop` closes the harness's stdin (it exits on EOF), then signals it by its
 * PID if it lingers. `harnessArgs` go to tests/harness/workerd.mjs after the stack's own (e.g.
 * `--app`); `ready` is the harness's ready line, and `send(message)` writes a JSON line to its
 * stdin and resolves to the next line it answers (both for `--app`, see the harness).
 */
export async function startStack({ harnessArgs = [] } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-client-test-"));
  const issuerEnvFile = path.join(dir, "dev-issuer.env");
  const { stdout: issuerEnv } = await execFileP(
    process.execPath,
    ["scripts/dev-issuer.mjs", "keygen", "--issuer", "http://127.0.0.1:1/dev-issuer"],
    { cwd: REPO_ROOT },
  );
  fs.writeFileSync(issuerEnvFile, issuerEnv, { mode: 0o600 });
  const issuer = readEnv(issuerEnv);
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const vars = {
    EDGEPLANE_ENV: "development",
    MASTER_KEY: randomBytes(32).toString("base64"),
    CRON_SECRET: randomBytes(24).toString("hex"),
    // The issuer of access tokens, so `<issuer>/.well-known/jwks.json` is where the keys are.
    PUBLIC_BASE_URL: baseUrl,
    OPERATOR_ISSUER: issuer.OPERATOR_ISSUER,
    OPERATOR_AUDIENCE: issuer.OPERATOR_AUDIENCE,
    OPERATOR_DEV_JWKS: issuer.OPERATOR_DEV_JWKS,
  };
  const logFile = path.join(dir, "workerd.log");
  const log = fs.openSync(logFile, "a");
  const child = spawn(
    process.execPath,
    [
      path.join(REPO_ROOT, "tests", "harness", "workerd.mjs"),
      "--state", path.join(dir, "state"),
      "--port", String(port),
      "--max-seconds", "900",
      ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}=${v}`]),
      ...harnessArgs,
    ],
    { cwd: REPO_ROOT, stdio: ["pipe", "pipe", log] },
  );
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end();
      const timer = setTimeout(() => child.kill("SIGTERM"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    fs.closeSync(log);
  };
  // The harness's stdout lines, each handed to the oldest waiting reader.
  const lines = [];
  const readers = [];
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    const reader = readers.shift();
    if (reader) reader(line);
    else lines.push(line);
  });
  const nextLine = (what) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`workerd: no ${what} within 60 s`)), READY_TIMEOUT_MS);
      const read = (line) => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(line));
        } catch (e) {
          reject(e);
        }
      };
      if (lines.length > 0) read(lines.shift());
      else readers.push(read);
      exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`workerd harness exited (${code}) before its ${what}`));
      });
    });
  const send = async (message) => {
    child.stdin.write(`${JSON.stringify(message)}\n`);
    const answer = await nextLine("answer");
    if (answer.error) throw new Error(`workerd harness: ${answer.error}`);
    return answer;
  };
  try {
    const ready = await nextLine("ready line");
    if (ready.url !== baseUrl) throw new Error(`workerd answered on ${ready.url}, expected ${baseUrl}`);
    const stack = await seed(baseUrl, issuerEnvFile);
    return { stack, stop, logFile, dir, ready, send };
  } catch (e) {
    await stop();
    e.message += `\n(workerd log: ${logFile})\n${tail(logFile)}`;
    throw e;
  }
}

function tail(file, lines = 20) {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** The run's stack (from test/run.mjs), or one of this file's own, stopped after its tests. */
export async function useStack() {
  if (process.env.EDGEPLANE_TEST_STACK) return JSON.parse(process.env.EDGEPLANE_TEST_STACK);
  const { stack, stop, dir } = await startStack();
  after(async () => {
    await stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return stack;
}
