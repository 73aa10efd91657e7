#!/usr/bin/env node
// Serves the built Edgeplane worker in workerd through Miniflare's programmatic API, for the
// end-to-end suite in tests/api (and anything else that wants a local Workers runtime without
// wrangler's proxy hop).
//
//   node tests/harness/workerd.mjs --state <fresh dir> [--var NAME=value]... [--max-seconds 1800]
//                                  [--port 0] [--script worker/build/index.js] [--isolates 2]
//                                  [--floor bench/floor-worker.js]...
//
// Bindings, ids and the compatibility date come from wrangler.toml, so the local runtime matches
// `wrangler dev`: D1 `DB`, KV `FLAGS`, R2 `ARCHIVE`, Durable Object `EVENTS` (SQLite storage).
// Vars are wrangler.toml's `[vars]`, then EDGEPLANE_ENV=development, then each --var.
// State is persisted under `<state>/v3/{d1,kv,r2,do}`, the layout `wrangler ... --persist-to
// <state>` uses, so `wrangler d1 execute DB --local --persist-to <state>` can inspect it.
//
// Before announcing readiness it applies every `d1-migrations/*.sql` not yet applied, in name
// order, and records each in wrangler's `d1_migrations` table in the same batch, exactly as
// `wrangler d1 migrations apply DB --local` does. Then it prints exactly one line to stdout:
//   {"url":"http://127.0.0.1:PORT"}
// Everything else (Miniflare's log, the worker's console output) goes to stderr.
// With --isolates 2 a second copy of the worker runs beside the first, in an isolate of its own
// over the same D1, KV, R2 and Durable Objects (another isolate of the same location), on a
// socket of its own announced as `second_url` in the ready line: what one isolate changes, the
// tests watch the other see.
// With --floor <script.js>, the same Miniflare also serves that module worker (no bindings; it
// may import .wasm beside it, as worker-build's output does) on a socket of its own, for
// benchmarks that compare Edgeplane with the runtime's floor. Edgeplane then gets a socket of its
// own too, so both can be reached without Miniflare's entry worker (a hop that costs about as
// much CPU as the floor itself and that Workers does not have), and the ready line names both:
//   {"url":"...","direct_url":"http://127.0.0.1:PORT","floor_url":"http://127.0.0.1:PORT",
//    "floor_urls":["http://127.0.0.1:PORT", ...]}
// --floor may be given more than once: floor_urls lists every floor in order, floor_url the first.
// With --app [name=]<dir>, the same Miniflare also serves a managed app's built Worker: <dir> holds
// its wrangler.toml (`main`, `compatibility_date`, `[vars]`, `[[services]]`), each service binding
// of which must name this Edgeplane (`service = "edgeplane"`). The binding does not go to
// Edgeplane directly but through a small JS worker that counts and forwards every request, so a
// test can tell how often the app called Edgeplane. The app (named `name`, default its
// wrangler.toml's) gets a socket of its own; the counter's tally is on another socket, reachable
// from the test only. The ready line names both per app:
//   {"url":"...","apps":{"edge-app":{"url":"http://127.0.0.1:PORT",
//                                   "edgeplane_calls_url":"http://127.0.0.1:PORT"}}}
// GET on edgeplane_calls_url answers {"count": N, "calls": ["GET /.well-known/jwks.json", ...]}.
// --app may be repeated (the same app under two names, say, with different vars); each app's vars
// are its wrangler.toml's, then each --app-var <name>:NAME=value. Values known only once
// Edgeplane is seeded (the app's API key) are set later: a line on stdin
//   {"app_vars":{"edge-app":{"EDGEPLANE_API_KEY":"ep_..."}}}
// restarts workerd with them (state on disk is kept, in-memory caches and tallies are not) and
// answers with a new ready line.
// It disposes Miniflare and exits on stdin EOF, SIGTERM/SIGINT, or after --max-seconds.
// Any failure before readiness exits 1 without printing the ready line.

import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { Log, LogLevel, Miniflare } from "miniflare";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** What `wrangler d1 migrations apply` runs first (wrangler 4.86.0, src/d1/migrations/helpers.ts),
 * byte for byte, so `sqlite_master` holds the same DDL as after wrangler. */
function migrationsTableDdl(table) {
  return `CREATE TABLE IF NOT EXISTS ${table}(
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		name       TEXT UNIQUE,
		applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);`;
}

function fail(message) {
  process.stderr.write(`workerd harness: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = {
    state: undefined,
    vars: {},
    maxSeconds: 1800,
    port: 0,
    script: path.join(REPO_ROOT, "worker", "build", "index.js"),
    verbose: false,
    isolates: 1,
    floors: [],
    apps: [],
    appVars: {},
    inspectorPort: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case "--state":
        opts.state = path.resolve(value());
        break;
      case "--var": {
        const pair = value();
        const eq = pair.indexOf("=");
        if (eq < 1) fail(`--var expects NAME=value, got ${JSON.stringify(pair)}`);
        opts.vars[pair.slice(0, eq)] = pair.slice(eq + 1);
        break;
      }
      case "--max-seconds":
        opts.maxSeconds = Number(value());
        if (!Number.isFinite(opts.maxSeconds) || opts.maxSeconds <= 0) {
          fail("--max-seconds expects a positive number");
        }
        break;
      case "--port":
        opts.port = Number(value());
        if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
          fail("--port expects 0..65535");
        }
        break;
      case "--script":
        opts.script = path.resolve(value());
        break;
      case "--verbose":
        opts.verbose = true;
        break;
      case "--isolates":
        opts.isolates = Number(value());
        if (opts.isolates !== 1 && opts.isolates !== 2) fail("--isolates expects 1 or 2");
        break;
      case "--floor":
        opts.floors.push(path.resolve(value()));
        if (!fs.existsSync(opts.floors.at(-1))) fail(`--floor ${opts.floors.at(-1)} does not exist`);
        break;
      case "--app": {
        const spec = value();
        const eq = spec.indexOf("=");
        const dir = path.resolve(eq > 0 ? spec.slice(eq + 1) : spec);
        const toml = path.join(dir, "wrangler.toml");
        if (!fs.existsSync(toml)) fail(`--app ${spec}: ${toml} does not exist`);
        opts.apps.push({ name: eq > 0 ? spec.slice(0, eq) : undefined, dir });
        break;
      }
      case "--app-var": {
        const spec = value();
        const m = /^([A-Za-z0-9_-]+):([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(spec);
        if (!m) fail(`--app-var expects <app>:NAME=value, got ${JSON.stringify(spec)}`);
        (opts.appVars[m[1]] ??= {})[m[2]] = m[3];
        break;
      }
      case "--inspector-port":
        // V8's inspector (Chrome DevTools protocol) for profiling: bench/profile-edge.mjs.
        opts.inspectorPort = Number(value());
        if (!Number.isInteger(opts.inspectorPort) || opts.inspectorPort < 1 || opts.inspectorPort > 65535) {
          fail("--inspector-port expects 1..65535");
        }
        break;
      case "-h":
      case "--help":
        process.stderr.write(
          "usage: node tests/harness/workerd.mjs --state <dir> [--var NAME=value]... " +
            "[--max-seconds N] [--port N] [--script path/to/index.js] [--isolates 1|2] [--verbose] " +
            "[--floor path/to/worker.js] [--app [name=]app/dir]... [--app-var app:NAME=value]... [--inspector-port N]\n",
        );
        process.exit(0);
        break;
      default:
        fail(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  if (!opts.state) fail("--state <dir> is required (a fresh directory for this run)");
  return opts;
}

/**
 * Reads the subset of TOML that wrangler.toml uses: `[table]`, `[[array.of.tables]]`, and
 * `key = value` where value is a string, number, boolean, or a one-line array of those or of
 * inline tables. Anything else is an error, so a change to wrangler.toml cannot silently drop a
 * binding here.
 */
function parseWranglerToml(text, file) {
  const root = {};
  let current = root;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const where = `${file}:${index + 1}`;
    const line = stripComment(raw).trim();
    if (!line) return;
    let m;
    if ((m = /^\[\[([A-Za-z0-9_.-]+)\]\]$/.exec(line))) {
      const { parent, key } = walk(root, m[1].split("."));
      if (parent[key] === undefined) parent[key] = [];
      if (!Array.isArray(parent[key])) throw new Error(`${where}: ${m[1]} is not an array`);
      current = {};
      parent[key].push(current);
    } else if ((m = /^\[([A-Za-z0-9_.-]+)\]$/.exec(line))) {
      const { parent, key } = walk(root, m[1].split("."));
      if (parent[key] === undefined) parent[key] = {};
      current = parent[key];
    } else if ((m = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(line))) {
      current[m[1]] = parseTomlValue(m[2], where);
    } else {
      throw new Error(`${where}: cannot read ${JSON.stringify(raw)}`);
    }
  });
  return root;
}

function walk(root, keys) {
  let node = root;
  for (const k of keys.slice(0, -1)) {
    if (node[k] === undefined) node[k] = {};
    node = Array.isArray(node[k]) ? node[k][node[k].length - 1] : node[k];
  }
  return { parent: node, key: keys[keys.length - 1] };
}

/** Drops a `#` comment that is not inside a double-quoted string. */
function stripComment(line) {
  let inString = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === "\\" && inString) i++;
    else if (c === '"') inString = !inString;
    else if (c === "#" && !inString) return line.slice(0, i);
  }
  return line;
}

function parseTomlValue(src, where) {
  // TOML's inline subset maps onto JSON once bare keys are quoted and `=` becomes `:`.
  const json = src
    .replace(/("(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_-]*)\s*=/g, (all, str, key) =>
      str !== undefined ? str : `${JSON.stringify(key)}:`,
    )
    .replace(/,\s*([\]}])/g, "$1");
  try {
    return JSON.parse(json);
  } catch {
    throw new Error(`${where}: unsupported TOML value ${src}`);
  }
}

/**
 * Splits a migration by the rule its header states: every statement ends with `;` as the last
 * character of a line (no triggers, so no `;` inside a statement ends a line). Comments are
 * removed first the way wrangler's splitter does (a `--` comment becomes a newline, a block
 * comment disappears, quotes protect both), so D1 stores the same statement text as after
 * `wrangler d1 migrations apply`.
 */
function splitStatements(sql, file) {
  const statements = [];
  let current = [];
  for (const line of stripSqlComments(sql).split("\n")) {
    current.push(line);
    if (line.trimEnd().endsWith(";")) {
      const statement = current.join("\n").trim().replace(/;$/, "").trim();
      if (statement) statements.push(statement);
      current = [];
    }
  }
  if (current.join("\n").trim()) {
    throw new Error(`${file}: text after the last statement does not end with ';'`);
  }
  return statements;
}

function stripSqlComments(sql) {
  let out = "";
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"' || c === "`") {
      const end = sql.indexOf(c, i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (c === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      out += "\n";
      i = end === -1 ? sql.length : end;
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end === -1 ? sql.length : end + 1;
    } else {
      out += c;
    }
  }
  return out;
}

async function applyMigrations(mf, d1Config) {
  const dir = path.resolve(REPO_ROOT, d1Config.migrations_dir ?? "migrations");
  const table = d1Config.migrations_table ?? "d1_migrations";
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table)) throw new Error(`bad migrations_table ${table}`);
  const names = fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((n) => n.endsWith(".sql")).sort()
    : [];
  const db = await mf.getD1Database(d1Config.binding);
  // prepare() rather than exec(): exec() would split the DDL at each newline.
  await db.prepare(migrationsTableDdl(table)).run();
  const applied = new Set(
    (await db.prepare(`SELECT name FROM ${table} ORDER BY id`).all()).results.map((r) => r.name),
  );
  for (const name of names) {
    if (applied.has(name)) continue;
    const file = path.join(dir, name);
    const statements = splitStatements(fs.readFileSync(file, "utf8"), file);
    try {
      // One batch, one transaction: the migration and its record land together, as in wrangler.
      await db.batch([
        ...statements.map((s) => db.prepare(s)),
        db.prepare(`INSERT INTO ${table} (name) values (?1)`).bind(name),
      ]);
    } catch (e) {
      throw new Error(`migration ${name} failed: ${e?.cause?.message ?? e?.message ?? e}`);
    }
    process.stderr.write(`workerd harness: applied ${name} (${statements.length} statements)\n`);
  }
}

/** Miniflare's own log, on stderr: stdout carries only the ready line. */
class StderrLog extends Log {
  log(message) {
    process.stderr.write(`${message}\n`);
  }
}

/** The name of the `i`th floor worker that --floor adds ("floor", "floor-2", ...). */
const floorName = (i) => (i === 0 ? "floor" : `floor-${i + 1}`);

/** A socket of a worker's own on a free loopback port, without Miniflare's entry worker. */
const DIRECT_SOCKET = { host: "127.0.0.1", port: 0 };

/**
 * Stands between an app's service binding and Edgeplane: forwards every request unchanged and
 * notes it. The tally is served by the `Calls` entrypoint, on a socket of its own that only the
 * test knows (the binding reaches the default entrypoint alone). One isolate serves both, so
 * they share the module's state.
 */
const COUNTER_SCRIPT = `
import { WorkerEntrypoint } from "cloudflare:workers";
const calls = [];
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    calls.push(request.method + " " + url.pathname);
    return env.EDGEPLANE.fetch(request);
  },
};
export class Calls extends WorkerEntrypoint {
  async fetch() {
    return Response.json({ count: calls.length, calls });
  }
}
`;

/**
 * The Miniflare workers of one --app: the app, its service bindings through a counter to
 * `edgeplaneName`, and the counter.
 */
function appWorkers(app, appVars, edgeplaneName) {
  const tomlPath = path.join(app.dir, "wrangler.toml");
  const config = parseWranglerToml(fs.readFileSync(tomlPath, "utf8"), tomlPath);
  const name = app.name ?? config.name;
  if (!name || name === edgeplaneName) fail(`--app ${app.dir}: name it (name=dir), not ${name}`);
  if (!config.main) fail(`${tomlPath} has no main`);
  const script = path.resolve(app.dir, config.main);
  if (!fs.existsSync(script)) fail(`${path.relative(REPO_ROOT, script)} is missing: build the app first`);
  const counter = `${name}-edgeplane-calls`;
  const serviceBindings = {};
  for (const s of config.services ?? []) {
    if (s.service !== edgeplaneName) {
      fail(`${tomlPath}: service binding ${s.binding} names ${s.service}; only ${edgeplaneName} is served here`);
    }
    serviceBindings[s.binding] = counter;
  }
  return [
    {
      name,
      scriptPath: script,
      modulesRoot: path.dirname(script),
      modules: true,
      modulesRules: [
        { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
        { type: "CompiledWasm", include: ["**/*.wasm"] },
      ],
      compatibilityDate: config.compatibility_date,
      compatibilityFlags: config.compatibility_flags ?? [],
      bindings: { ...(config.vars ?? {}), ...(appVars[name] ?? {}) },
      serviceBindings,
      unsafeDirectSockets: [DIRECT_SOCKET],
    },
    {
      name: counter,
      script: COUNTER_SCRIPT,
      modules: true,
      compatibilityDate: config.compatibility_date,
      serviceBindings: { EDGEPLANE: edgeplaneName },
      unsafeDirectSockets: [{ ...DIRECT_SOCKET, entrypoint: "Calls" }],
    },
  ];
}

/** The ready line's `apps`: each app's socket and its counter's. */
async function appUrls(mf, workers) {
  const apps = {};
  for (const w of workers) {
    if (!w.name.endsWith("-edgeplane-calls")) continue;
    const name = w.name.slice(0, -"-edgeplane-calls".length);
    apps[name] = {
      url: `http://127.0.0.1:${(await mf.unsafeGetDirectURL(name)).port}`,
      edgeplane_calls_url: `http://127.0.0.1:${(await mf.unsafeGetDirectURL(w.name, "Calls")).port}`,
    };
  }
  return apps;
}

/** Forwards workerd's output (the worker's console lines) to stderr, line by line. */
function forwardToStderr(stream) {
  const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
  rl.on("line", (line) => {
    if (line.includes("Not symbolizing stack traces because $LLVM_SYMBOLIZER is not set")) return;
    process.stderr.write(`${line}\n`);
  });
}

let mf;
let shuttingDown = false;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const tomlPath = path.join(REPO_ROOT, "wrangler.toml");
  const config = parseWranglerToml(fs.readFileSync(tomlPath, "utf8"), tomlPath);

  if (!fs.existsSync(opts.script)) {
    fail(`${path.relative(REPO_ROOT, opts.script)} is missing: build the worker with \`make worker\``);
  }
  if (!config.compatibility_date) fail("wrangler.toml has no compatibility_date");
  fs.mkdirSync(opts.state, { recursive: true });

  const d1 = config.d1_databases ?? [];
  const kv = config.kv_namespaces ?? [];
  const r2 = config.r2_buckets ?? [];
  const doBindings = config.durable_objects?.bindings ?? [];
  const sqliteClasses = new Set(
    (config.migrations ?? []).flatMap((m) => m.new_sqlite_classes ?? []),
  );

  const vars = { ...(config.vars ?? {}), EDGEPLANE_ENV: "development", ...opts.vars };

  const shutdown = async (why, code = 0) => {
    if (shuttingDown) return;
    shuttingDown = true;
    process.stderr.write(`workerd harness: stopping (${why})\n`);
    // Exit even if dispose hangs: the caller is waiting for this process to go away.
    setTimeout(() => process.exit(code), 10_000).unref();
    try {
      await mf?.dispose();
    } catch (e) {
      process.stderr.write(`workerd harness: dispose failed: ${e?.message ?? e}\n`);
    }
    process.exit(code);
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.stdin.on("end", () => shutdown("stdin closed"));
  process.stdin.on("error", () => shutdown("stdin error"));
  process.stdin.resume();
  // setTimeout fires at once beyond 2^31-1 ms: cap the watchdog there (~24 days).
  const watchdogMs = Math.min(opts.maxSeconds * 1000, 2 ** 31 - 1);
  setTimeout(() => shutdown(`--max-seconds ${opts.maxSeconds} elapsed`), watchdogMs).unref();

  const shared = {
    host: "127.0.0.1",
    port: opts.port,
    cf: false,
    log: new StderrLog(opts.verbose ? LogLevel.DEBUG : LogLevel.WARN),
    logRequests: opts.verbose,
    handleRuntimeStdio(stdout, stderr) {
      forwardToStderr(stdout);
      forwardToStderr(stderr);
    },
    // Lets the suite fire the cron triggers: GET /cdn-cgi/handler/scheduled?cron=...
    unsafeTriggerHandlers: true,
    defaultPersistRoot: path.join(opts.state, "v3"),
    ...(opts.inspectorPort ? { inspectorPort: opts.inspectorPort } : {}),
  };
  const worker = {
    name: config.name,
    scriptPath: opts.script,
    // Module names are relative to the entry's directory (as wrangler names them), which also
    // lets --script point outside the repository.
    modulesRoot: path.dirname(opts.script),
    modules: true,
    modulesRules: [
      // worker-build emits an ES module (index.js) that imports ./index_bg.wasm.
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags ?? [],
    bindings: vars,
    d1Databases: Object.fromEntries(
      d1.map((d) => [d.binding, d.preview_database_id ?? d.database_id ?? d.database_name]),
    ),
    kvNamespaces: Object.fromEntries(kv.map((k) => [k.binding, k.preview_id ?? k.id])),
    r2Buckets: Object.fromEntries(
      r2.map((b) => [b.binding, b.preview_bucket_name ?? b.bucket_name]),
    ),
    durableObjects: Object.fromEntries(
      doBindings.map((b) => [
        b.name,
        { className: b.class_name, useSQLite: sqliteClasses.has(b.class_name) },
      ]),
    ),
  };
  const second = {
    ...worker,
    name: `${config.name}-second-isolate`,
    // The same Durable Objects: the first worker's class instances, not a second set.
    durableObjects: Object.fromEntries(
      doBindings.map((b) => [b.name, { className: b.class_name, scriptName: config.name }]),
    ),
    unsafeDirectSockets: [DIRECT_SOCKET],
  };
  // The floors: module workers with no bindings.
  const floors = opts.floors.map((script, i) => ({
    name: floorName(i),
    scriptPath: script,
    modulesRoot: path.dirname(script),
    modules: true,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: config.compatibility_date,
    unsafeDirectSockets: [DIRECT_SOCKET],
  }));
  if (floors.length > 0) worker.unsafeDirectSockets = [DIRECT_SOCKET];
  const workers = [worker];
  if (opts.isolates === 2) workers.push(second);
  workers.push(...floors);
  const baseWorkers = [...workers];
  const appsOf = () => opts.apps.flatMap((app) => appWorkers(app, opts.appVars, config.name));
  workers.push(...appsOf());
  mf = new Miniflare(workers.length > 1 ? { ...shared, workers } : { ...shared, ...worker });

  const url = await mf.ready;
  for (const db of d1) await applyMigrations(mf, db);
  if (shuttingDown) return;
  const ready = { url: `http://127.0.0.1:${url.port}` };
  if (opts.isolates === 2) {
    const direct = await mf.unsafeGetDirectURL(second.name);
    ready.second_url = `http://127.0.0.1:${direct.port}`;
  }
  if (floors.length > 0) {
    ready.direct_url = `http://127.0.0.1:${(await mf.unsafeGetDirectURL()).port}`;
    ready.floor_urls = [];
    for (const f of floors) {
      ready.floor_urls.push(`http://127.0.0.1:${(await mf.unsafeGetDirectURL(f.name)).port}`);
    }
    ready.floor_url = ready.floor_urls[0];
  }
  if (opts.apps.length > 0) {
    ready.apps = await appUrls(mf, workers);
    listenForAppVars(async (appVars) => {
      for (const [name, vars] of Object.entries(appVars)) {
        opts.appVars[name] = { ...(opts.appVars[name] ?? {}), ...vars };
      }
      const next = [...baseWorkers, ...appsOf()];
      await mf.setOptions({ ...shared, workers: next });
      await mf.ready;
      return { ...ready, apps: await appUrls(mf, next) };
    });
  }
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

/**
 * Reads `{"app_vars": {...}}` lines on stdin, one at a time; `apply` restarts with them and
 * resolves to the next ready line. A bad line is reported on stdout as `{"error": "..."}`.
 */
function listenForAppVars(apply) {
  let queue = Promise.resolve();
  readline.createInterface({ input: process.stdin, crlfDelay: Infinity }).on("line", (line) => {
    if (!line.trim()) return;
    queue = queue.then(async () => {
      let answer;
      try {
        const msg = JSON.parse(line);
        if (typeof msg?.app_vars !== "object" || msg.app_vars === null) throw new Error("expected {\"app_vars\": {...}}");
        answer = await apply(msg.app_vars);
      } catch (e) {
        answer = { error: String(e?.message ?? e) };
      }
      if (!shuttingDown) process.stdout.write(`${JSON.stringify(answer)}\n`);
    });
  });
}

main().catch(async (e) => {
  // A shutdown already under way (stdin closed during startup) exits by itself.
  if (shuttingDown) return;
  process.stderr.write(`workerd harness: ${e?.stack ?? e}\n`);
  if (!mf) process.exit(1);
  shuttingDown = true;
  setTimeout(() => process.exit(1), 10_000).unref();
  await mf.dispose().catch(() => {});
  process.exit(1);
});
