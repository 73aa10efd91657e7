#!/usr/bin/env node
// Reliability check of the event pipeline (FR-BILL-001: nothing acknowledged is ever lost):
// ingests EVENTS billing events in batches of BATCH with CONCURRENCY senders that retry each
// batch until it is acknowledged, while the runtime (workerd through tests/harness/workerd.mjs,
// its whole process group) is killed with SIGKILL at random points and restarted on the same
// state. Archive flushes run throughout (the Durable Object alarms, every second here, and the
// scheduled job). Afterwards every event must be exported exactly once and the chain must verify.
//
//   node tests/reliability/events-sigkill.mjs      after `make worker`; knobs: EVENTS (100000),
//                                                  BATCH (100), CONCURRENCY (4), KILLS (8),
//                                                  SEED, MAX_SECONDS (900)
//
// Servers listen on 127.0.0.1 only and are stopped by their process group id; the temp dir is
// removed. Exit status 0 only if the check holds.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { devIssuer, ROOT, Runtime, seedTenant, seeded, sleep } from "./runtime.mjs";

const num = (name, dflt) => Number(process.env[name] ?? dflt);
const EVENTS = num("EVENTS", 100000);
const BATCH = num("BATCH", 100);
const CONC = num("CONCURRENCY", 4);
const KILLS = num("KILLS", 8);
const MAX_SECONDS = num("MAX_SECONDS", 900);
const SEED = num("SEED", Date.now() % 1000003);
const random = seeded(SEED);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-reliability-"));
const log = (s = "") => process.stdout.write(`${s}\n`);
let rt;

async function main() {
  const deadline = setTimeout(() => { console.error("reliability: over MAX_SECONDS"); rt.kill().finally(() => process.exit(1)); }, MAX_SECONDS * 1000);
  deadline.unref();
  if (!fs.existsSync(path.join(ROOT, "worker/build/index.js"))) throw new Error("worker/build is missing: run `make worker`");
  const issuer = devIssuer(tmp, MAX_SECONDS + 120);
  const vars = { ...issuer.vars, CRON_SECRET: crypto.randomUUID(), EVENT_FLUSH_DELAY_MS: "1000" };
  rt = new Runtime({ tmp, vars, maxSeconds: MAX_SECONDS });
  log(`reliability: ${EVENTS} events in batches of ${BATCH}, ${CONC} senders, ${KILLS} SIGKILLs, seed ${SEED}`);
  await rt.start();
  const { tenant, key } = await seedTenant(rt, issuer.operator, ["bill:write", "bill:read"]);

  const batches = Math.ceil(EVENTS / BATCH);
  let next = 0;
  let acked = 0;
  let retries = 0;
  let done = false;
  const t0 = performance.now();
  const sender = async () => {
    while (next < batches) {
      const b = next++;
      const events = [];
      for (let j = b * BATCH; j < Math.min(EVENTS, (b + 1) * BATCH); j++) {
        events.push({ id: `r-${j}`, type: "api.call", quantity: 1, timestamp: "2026-01-01T00:00:00Z" });
      }
      for (;;) {
        try {
          const r = await rt.call("POST", "/v1/billing/events", { apiKey: key, body: { events } });
          if (r.status === 202) { acked += events.length; break; }
          if (r.status < 500) throw new Error(`refused: HTTP ${r.status} ${r.text.slice(0, 300)}`);
        } catch (e) {
          if (String(e.message).startsWith("refused")) throw e;
        }
        retries++;
        await sleep(50);
      }
    }
  };
  let killed = 0;
  const killer = async () => {
    for (let k = 0; k < KILLS && !done; k++) {
      // Each kill falls inside the ingestion: at a jittered point of the k-th of KILLS equal
      // shares of the acknowledged events, so a fast run cannot finish before the kills.
      const at = (EVENTS * (k + 0.25 + random() * 0.5)) / KILLS;
      while (!done && acked < at) await sleep(2);
      if (done) break;
      await rt.kill();
      killed++;
      await sleep(random() * 500);
      await rt.start();
      // Sometimes run the scheduled flush as well.
      if (random() < 0.5) await rt.scheduled().catch(() => {});
    }
  };
  const kills = killer();
  await Promise.all(Array.from({ length: CONC }, sender));
  done = true;
  await kills;
  log(`ingested: ${acked} events acknowledged in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${killed} SIGKILLs during ingestion, ${retries} retried requests`);
  if (killed < KILLS) throw new Error(`FAILED: only ${killed} of ${KILLS} SIGKILLs happened during the ingestion`);

  // A clean restart, a flush, then the check.
  await rt.stop();
  await rt.start();
  await rt.scheduled();
  const { seen, pages } = await rt.exported("billing", key, (e) => e.id);
  const missing = [];
  for (let j = 0; j < EVENTS; j++) if (seen.get(`r-${j}`) !== 1) missing.push(`r-${j}:${seen.get(`r-${j}`) ?? 0}`);
  const extra = [...seen.keys()].filter((id) => !/^r-\d+$/.test(id));
  const verify = JSON.parse((await rt.must("GET", `/v1/audit/verify?tenant=${tenant.id}&kind=billing`, { bearer: issuer.auditor })).text);
  log(`exported: ${seen.size} distinct events in ${pages} pages; chain: ${verify.ok ? "ok" : JSON.stringify(verify.first_break)} (${verify.records} records, ${verify.archives} archives)`);
  await rt.stop();
  if (missing.length || extra.length || !verify.ok) {
    throw new Error(`FAILED: ${missing.length} events not exported exactly once (${missing.slice(0, 10).join(", ")}), ${extra.length} unexpected`);
  }
  log("reliability: every acknowledged event exported exactly once");
}

main()
  .catch((e) => { console.error(e.stack ?? String(e)); process.exitCode = 1; })
  .finally(async () => { await rt?.kill().catch(() => {}); fs.rmSync(tmp, { recursive: true, force: true }); });
