#!/usr/bin/env node
// The client libraries' event reporters against a runtime that dies: EVENTS billing events are
// reported through a reporter (REPORTER=ts, the TypeScript client in this process; REPORTER=rust,
// the Rust client's `report_events` example in a process of its own) while Edgeplane (workerd,
// its whole process group) is killed with SIGKILL at random points and restarted on the same
// state and port. The events carry no id: only the reporter's Idempotency-Key, reused on every
// retry of a batch, keeps a batch whose answer was lost from being stored twice. Afterwards each
// event must be exported exactly once, and the reporter must have dropped none.
//
// Then a full queue: with the server down, a reporter holding at most QUEUE events is given
// QUEUE + EXTRA; it must refuse exactly the newest EXTRA and report them (`queue_full`), and
// after the restart exactly the accepted ones are exported.
//
//   node tests/reliability/reporter-sigkill.mjs   after `make worker` and the client's build;
//                                                 knobs: REPORTER (ts|rust), EVENTS (5000),
//                                                 KILLS (4), SEED, MAX_SECONDS (300),
//                                                 RUST_REPORTER (path of the built example)
//
// Servers listen on 127.0.0.1 only and are stopped by their process group id; the temp dir is
// removed. Exit status 0 only if every check holds.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { devIssuer, freePort, limit, ROOT, Runtime, seedTenant, seeded, sleep } from "./runtime.mjs";

const num = (name, dflt) => Number(process.env[name] ?? dflt);
const REPORTER = process.env.REPORTER ?? "ts";
const EVENTS = num("EVENTS", 5000);
const KILLS = num("KILLS", 4);
const MAX_SECONDS = num("MAX_SECONDS", 300);
const QUEUE = 100;
const EXTRA = 25;
const SEED = num("SEED", Date.now() % 1000003);
const random = seeded(SEED);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-reporter-"));
const log = (s = "") => process.stdout.write(`${s}\n`);
let rt;

const usage = (tenant, seq) => ({
  tenant_id: tenant,
  type: "reporter.check",
  quantity: 1,
  timestamp: "2026-01-01T00:00:00Z",
  metadata: { seq },
});

/**
 * The TypeScript reporter, in this process. `progress(acknowledged)` is called as batches are
 * acknowledged (counted from the events that left the queue without being dropped).
 */
async function tsReporter(base, key, tenant, { count, from = 0, maxQueue, down }) {
  const { createEventReporter } = await import(path.join(ROOT, "clients/typescript/dist/index.js"));
  const dropped = [];
  const reporter = createEventReporter({
    kind: "billing",
    baseUrl: base,
    apiKey: key,
    maxBatch: 50,
    flushIntervalMs: 10,
    maxQueue,
    retry: { baseMs: 50, maxMs: 500 },
    onDrop: (events, reason) => dropped.push(...events.map((e) => ({ seq: e.metadata.seq, reason: reason.kind }))),
  });
  let reported = 0;
  const state = { reported: () => reported, pending: () => reporter.pending };
  const run = (async () => {
    for (let i = 0; i < count; i++) {
      reporter.report(usage(tenant, from + i));
      reported++;
      // A few events at a time, so the reporting spans the kills.
      if (!down && i % 20 === 19) await sleep(2);
    }
    return { close: () => reporter.close({ timeoutMs: 120_000 }) };
  })();
  return { state, run, dropped };
}

/**
 * The Rust reporter: `report_events <base> <key> <tenant> <count> <from> <max_queue> <chunk>`
 * reports `chunk` events, prints `reported N`, flushes, and so on; `dropped SEQ REASON` per
 * dropped event, and `done` after its last flush once its input is closed. With the server down
 * the whole count is one chunk, so the queue fills before the first flush.
 */
function rustReporter(base, key, tenant, { count, from = 0, maxQueue, down }) {
  const bin = process.env.RUST_REPORTER;
  if (!bin || !fs.existsSync(bin)) throw new Error("RUST_REPORTER must name the built report_events example");
  const child = spawn(bin, [base, key, tenant, String(count), String(from), String(maxQueue), String(down ? count : 50)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const dropped = [];
  let reported = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    const [what, a, b] = line.split(" ");
    if (what === "reported") reported = Number(a);
    else if (what === "dropped") dropped.push({ seq: Number(a), reason: b });
    else if (what === "done") done();
  });
  child.once("exit", (code) => done(code));
  const state = { reported: () => reported, pending: () => Number.NaN };
  const run = Promise.resolve({
    close: async () => {
      child.stdin.end(); // EOF: flush, then exit
      const r = await Promise.race([finished, limit(120_000).then(() => "timeout")]);
      if (r === "timeout") {
        child.kill("SIGKILL");
        throw new Error("the Rust reporter did not finish within 120 s");
      }
      await new Promise((res) => (child.exitCode !== null ? res() : child.once("exit", res)));
      if (child.exitCode !== 0) throw new Error(`the Rust reporter exited with ${child.exitCode}`);
    },
  });
  return { state, run, dropped };
}

const reporterOf = REPORTER === "rust" ? rustReporter : tsReporter;

/** Each of `seqs` exported exactly once and nothing else: the failures, or an empty list. */
function exactlyOnce(seen, seqs) {
  const bad = [];
  for (const s of seqs) if (seen.get(s) !== 1) bad.push(`${s}:${seen.get(s) ?? 0}`);
  const want = new Set(seqs);
  for (const s of seen.keys()) if (!want.has(s)) bad.push(`unexpected ${s}:${seen.get(s)}`);
  return bad;
}

async function main() {
  const deadline = setTimeout(() => { console.error("reporter reliability: over MAX_SECONDS"); rt?.kill().finally(() => process.exit(1)); }, MAX_SECONDS * 1000);
  deadline.unref();
  if (!fs.existsSync(path.join(ROOT, "worker/build/index.js"))) throw new Error("worker/build is missing: run `make worker`");
  if (REPORTER === "ts" && !fs.existsSync(path.join(ROOT, "clients/typescript/dist/index.js"))) {
    throw new Error("clients/typescript/dist is missing: run `npm --prefix clients/typescript run build`");
  }
  const issuer = devIssuer(tmp, MAX_SECONDS + 120);
  const vars = { ...issuer.vars, CRON_SECRET: crypto.randomUUID(), EVENT_FLUSH_DELAY_MS: "1000" };
  rt = new Runtime({ tmp, vars, port: await freePort(), maxSeconds: MAX_SECONDS });
  log(`reporter reliability (${REPORTER}): ${EVENTS} events, ${KILLS} SIGKILLs, seed ${SEED}`);
  await rt.start();
  const base = rt.base;
  const { tenant, key } = await seedTenant(rt, issuer.operator, ["bill:write", "bill:read"]);

  // 1. Kills while reporting.
  const t0 = performance.now();
  const r1 = await reporterOf(base, key, tenant.id, { count: EVENTS, maxQueue: EVENTS });
  let killed = 0;
  for (let k = 0; k < KILLS; k++) {
    const at = (EVENTS * (k + 0.25 + random() * 0.5)) / KILLS;
    while (r1.state.reported() < at) await sleep(2);
    await rt.kill();
    killed++;
    await sleep(random() * 500);
    await rt.start();
    if (rt.base !== base) throw new Error(`restarted on ${rt.base}, not ${base}`);
    if (random() < 0.5) await rt.scheduled().catch(() => {});
  }
  await (await r1.run).close();
  log(`reported: ${EVENTS} events in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${killed} SIGKILLs while reporting, ${r1.dropped.length} dropped`);
  if (killed < KILLS) throw new Error(`FAILED: only ${killed} of ${KILLS} SIGKILLs happened`);

  // 2. A full queue while the server is down.
  await rt.kill();
  const r2 = await reporterOf(base, key, tenant.id, { count: QUEUE + EXTRA, from: EVENTS, maxQueue: QUEUE, down: true });
  while (r2.state.reported() < QUEUE + EXTRA) await sleep(5);
  await sleep(300); // the reporter has been failing against the dead port meanwhile
  await rt.start();
  await (await r2.run).close();

  // A clean restart, the archive flush, then the checks.
  await rt.stop();
  await rt.start();
  await rt.scheduled();
  const { seen, pages } = await rt.exported("billing", key, (e) => e.metadata?.seq);
  await rt.stop();
  const failures = [];
  const kept = [...Array(EVENTS + QUEUE).keys()];
  const refused = Array.from({ length: EXTRA }, (_, i) => EVENTS + QUEUE + i);
  const bad = exactlyOnce(seen, kept);
  if (bad.length) failures.push(`${bad.length} events not exported exactly once: ${bad.slice(0, 10).join(", ")}`);
  if (r1.dropped.length) failures.push(`the reporter dropped ${r1.dropped.length} events while the server restarted: ${JSON.stringify(r1.dropped.slice(0, 5))}`);
  const full = r2.dropped.filter((d) => d.reason === "queue_full" || d.reason === "QueueFull").map((d) => d.seq);
  if (JSON.stringify(full) !== JSON.stringify(refused) || r2.dropped.length !== EXTRA) {
    failures.push(`a full queue must refuse exactly the newest ${EXTRA} and report them; reported ${JSON.stringify(r2.dropped.slice(0, 30))}`);
  }
  log(`exported: ${seen.size} distinct events in ${pages} pages; full queue: ${full.length} refused and reported, none of them exported`);
  if (failures.length) throw new Error(`FAILED:\n- ${failures.join("\n- ")}`);
  log(`reporter reliability (${REPORTER}): every event exported exactly once, and every drop reported`);
}

main()
  .catch((e) => { console.error(e.stack ?? String(e)); process.exitCode = 1; })
  .finally(async () => { await rt?.kill().catch(() => {}); fs.rmSync(tmp, { recursive: true, force: true }); });
