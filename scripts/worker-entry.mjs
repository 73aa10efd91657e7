#!/usr/bin/env node
// Stands in for esbuild in worker-build (scripts/build-worker.sh hands it over as ESBUILD_BIN when
// the crate has a js/entry.js): before bundling, it replaces the default export of the shim
// worker-build wrote with the crate's own, then runs the real esbuild (REAL_ESBUILD) with the
// same arguments.
//
// Why: worker-build's default export is a Proxy of a `WorkerEntrypoint` class. For every request
// the runtime constructs that class through the Proxy's construct trap, which wraps the instance
// in another Proxy, whose get trap wraps `fetch` in a third Proxy with an async apply trap. A
// plain module-syntax default export `{ fetch }` keeps the shim's recovery (a request after a
// critical error reinitializes the Wasm instance first; a RuntimeError marks it critical)
// without any of that. bench/worker-floor-bare uses it, so that floor shows what the crossing
// into Wasm costs by itself. Edgeplane's worker (worker/js/entry.js) uses it because its `fetch`
// may return a `Response` at once instead of a promise, and answers a panic that happened before
// `fetch` returned, which worker-build's class cannot do.
//
// Fails the build when the shim does not hold exactly the line it replaces (a worker-build
// upgrade that changes the shim must be looked at), or when the entry leaves out a handler the
// crate exports.

import { spawnSync } from "node:child_process";
import fs from "node:fs";

const fail = (msg) => {
  console.error(`worker-entry: ${msg}`);
  process.exit(1);
};

const entry = process.env.WORKER_ENTRY;
const real = process.env.REAL_ESBUILD;
if (!entry || !real) fail("WORKER_ENTRY and REAL_ESBUILD must be set");

const SHIM = "shim.js";
const DEFAULT = "export default new Proxy(Entrypoint, classProxyHooks);";
if (fs.existsSync(SHIM)) {
  const shim = fs.readFileSync(SHIM, "utf8");
  if (shim.split(DEFAULT).length !== 2) fail(`${process.cwd()}/${SHIM} does not hold "${DEFAULT}" once`);
  const own = fs.readFileSync(entry, "utf8");
  // Every handler worker-build would have put on the class must be in the entry too.
  for (const [, name] of shim.matchAll(/^Entrypoint\.prototype\.(\w+) = /gm)) {
    if (!new RegExp(`^\\s+(async\\s+)?${name}\\(`, "m").test(own)) fail(`${entry} has no ${name}() handler, which the crate exports`);
  }
  fs.writeFileSync(SHIM, shim.replace(DEFAULT, own));
}
const run = spawnSync(real, process.argv.slice(2), { stdio: "inherit" });
process.exit(run.status ?? 1);
