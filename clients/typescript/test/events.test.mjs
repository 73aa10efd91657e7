// The event reporter against the real worker: batches within the API's limit, each event stored
// once (read back with the billing export); a batch whose answer was lost is sent again with its
// Idempotency-Key and applied once; 429 (Retry-After), 503 and 408 are retried, other 4xx go to
// onDrop; the queue bound refuses the newest event and says so; close() flushes.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { before, test } from "node:test";
import { promisify } from "node:util";

import { createEdgeplaneClient, createEventReporter, InvalidEventError, MAX_BATCH } from "../dist/index.js";
import { provisionTenant, useStack } from "./stack.mjs";

let stack;
let app;
before(async () => {
  stack = await useStack();
  app = createEdgeplaneClient({ baseUrl: stack.baseUrl, apiKey: stack.apiKey });
});

const now = () => new Date().toISOString();
const usage = (tenant_id, n, id) => ({ tenant_id, type: "api.call", quantity: n, timestamp: now(), ...(id ? { id } : {}) });

/** A tenant of this test's own, so what the export holds is this test's events only. */
async function freshTenant() {
  return (await provisionTenant(stack, `ev-${randomUUID().slice(0, 8)}`)).tenantId;
}

/** Every billing event of `tenantId`, through the export's pages (`bill:read`). */
async function exported(tenantId) {
  const items = [];
  let cursor;
  for (;;) {
    const { data, error } = await app.GET("/v1/billing/events", {
      params: { query: { tenant: tenantId, limit: 1000, ...(cursor ? { cursor } : {}) } },
    });
    assert.equal(error, undefined, JSON.stringify(error));
    items.push(...data.items);
    if (!data.next_cursor || data.items.length === 0) return items;
    cursor = data.next_cursor;
  }
}

/**
 * A fetch that records each event POST (its Idempotency-Key, size and answer) and lets
 * `script(n, request)` answer the n-th one itself: return a Response, "lose" (the server gets
 * the request, the caller a network error), or nothing (the server answers).
 */
function recordingFetch(script = () => undefined) {
  const posts = [];
  const wrapped = async (request) => {
    if (request.method !== "POST" || !/\/v1\/(billing|audit)\/events$/.test(new URL(request.url).pathname)) {
      return fetch(request);
    }
    const text = await request.clone().text();
    const post = {
      key: request.headers.get("idempotency-key"),
      size: JSON.parse(text).events.length,
      bytes: Buffer.byteLength(text),
      at: Date.now(),
    };
    posts.push(post);
    const action = script(posts.length, request);
    if (action instanceof Response) {
      post.status = action.status;
      return action;
    }
    const res = await fetch(request);
    post.status = res.status;
    post.outcome = res.ok ? await res.clone().json() : undefined;
    if (action === "lose") {
      await res.body?.cancel();
      throw new TypeError("fetch failed (the test dropped the answer)");
    }
    return res;
  };
  return { posts, fetch: wrapped };
}

const problem = (status, type) =>
  new Response(JSON.stringify({ type: `https://edgeplane.dev/problems/${type}`, title: type, status, detail: type }), {
    status,
    headers: { "content-type": "application/problem+json", ...(status === 429 ? { "retry-after": "1" } : {}) },
  });

test("events are sent in batches of at most the API's limit and each is stored once", async () => {
  const tenant = await freshTenant();
  const rec = recordingFetch();
  const drops = [];
  const reporter = createEventReporter({
    kind: "billing",
    client: createEdgeplaneClient({ baseUrl: stack.baseUrl, apiKey: stack.apiKey, fetch: rec.fetch }),
    flushIntervalMs: 60_000,
    onDrop: (events, reason) => drops.push({ events, reason }),
  });
  const n = 2 * MAX_BATCH + 500;
  for (let i = 0; i < n; i++) assert.equal(reporter.report(usage(tenant, i + 1, `batch-${i}`)), true);
  await reporter.flush();
  assert.equal(reporter.pending, 0);
  assert.deepEqual(drops, []);
  assert.deepEqual(rec.posts.map((p) => p.size), [MAX_BATCH, MAX_BATCH, 500]);
  assert.equal(new Set(rec.posts.map((p) => p.key)).size, 3, "one Idempotency-Key per batch");
  assert.ok(rec.posts.every((p) => p.status === 202 && p.outcome.accepted === p.size));

  const stored = await exported(tenant);
  assert.equal(stored.length, n);
  assert.equal(new Set(stored.map((e) => e.id)).size, n);
  assert.equal(stored.find((e) => e.id === "batch-7").quantity, 8);
  await reporter.close();
});

test("a batch stays within the API's 1 MiB body limit", async () => {
  const tenant = await freshTenant();
  const rec = recordingFetch();
  const drops = [];
  const reporter = createEventReporter({
    kind: "billing",
    client: createEdgeplaneClient({ baseUrl: stack.baseUrl, apiKey: stack.apiKey, fetch: rec.fetch }),
    flushIntervalMs: 60_000,
    onDrop: (events, reason) => drops.push(reason),
  });
  const metadata = { note: "x".repeat(4000) };
  for (let i = 0; i < 300; i++) reporter.report({ ...usage(tenant, 1, `big-${i}`), metadata });
  await reporter.flush();
  assert.deepEqual(drops, []);
  assert.ok(rec.posts.length >= 2, `${rec.posts.length} request(s)`);
  assert.ok(rec.posts.every((p) => p.status === 202 && p.bytes <= 1024 * 1024));
  assert.equal(rec.posts.reduce((n, p) => n + p.size, 0), 300);
  assert.equal((await exported(tenant)).length, 300);
  await reporter.close();
});

test("a batch whose answer was lost is sent again with its Idempotency-Key and applied once", async () => {
  const tenant = await freshTenant();
  const rec = recordingFetch((n) => (n === 1 ? "lose" : undefined));
  const reporter = createEventReporter({
    kind: "billing",
    baseUrl: stack.baseUrl,
    apiKey: stack.apiKey,
    fetch: rec.fetch,
    retry: { baseMs: 10, maxMs: 50 },
  });
  // Without ids: the server names each event `<Idempotency-Key>:<index>`, so only the reused
  // key makes the retry a duplicate.
  for (let i = 0; i < 50; i++) reporter.report(usage(tenant, 1));
  await reporter.flush();
  assert.equal(rec.posts.length, 2);
  assert.equal(rec.posts[0].key, rec.posts[1].key);
  assert.deepEqual(rec.posts[0].outcome, { received: 50, accepted: 50, duplicates: 0 });
  assert.deepEqual(rec.posts[1].outcome, { received: 50, accepted: 0, duplicates: 50 });
  const stored = await exported(tenant);
  assert.equal(stored.length, 50);
  assert.ok(stored.every((e) => e.id.startsWith(`${rec.posts[0].key}:`)));
  await reporter.close();
});

test("503, 408 and 429 are retried with the same key, 429 after its Retry-After", async () => {
  const tenant = await freshTenant();
  const answers = { 1: problem(503, "unavailable"), 2: problem(408, "internal"), 3: problem(429, "rate-limited") };
  const rec = recordingFetch((n) => answers[n]);
  const drops = [];
  const reporter = createEventReporter({
    kind: "billing",
    baseUrl: stack.baseUrl,
    apiKey: stack.apiKey,
    fetch: rec.fetch,
    retry: { baseMs: 20, maxMs: 100 },
    onDrop: (events, reason) => drops.push(reason),
  });
  reporter.report(usage(tenant, 5, "retried-1"));
  await reporter.flush();
  assert.deepEqual(rec.posts.map((p) => p.status), [503, 408, 429, 202]);
  assert.equal(new Set(rec.posts.map((p) => p.key)).size, 1);
  // Backoff alone waits at most maxMs (100 ms); Retry-After said 1 s.
  assert.ok(rec.posts[3].at - rec.posts[2].at >= 950, `waited ${rec.posts[3].at - rec.posts[2].at} ms`);
  assert.ok(rec.posts[1].at - rec.posts[0].at < 500);
  assert.deepEqual(drops, []);
  assert.equal((await exported(tenant)).length, 1);
  await reporter.close();
});

test("other 4xx are not retried: the events go to onDrop with the problem", async () => {
  const drops = [];
  const rec = recordingFetch();
  const reporter = createEventReporter({
    kind: "billing",
    baseUrl: stack.baseUrl,
    apiKey: stack.apiKey,
    fetch: rec.fetch,
    onDrop: (events, reason) => drops.push({ events, reason }),
  });
  // A tenant the app is not enabled for (here: none at all) answers 404.
  reporter.report(usage(randomUUID(), 1, "nowhere-1"));
  reporter.report(usage(randomUUID(), 1));
  await reporter.flush();
  assert.equal(rec.posts.length, 2, "each tenant's batch once, no retry");
  assert.equal(drops.length, 2);
  assert.equal(drops[0].reason.kind, "rejected");
  assert.equal(drops[0].reason.status, 404);
  assert.equal(drops[0].reason.problem.status, 404);
  assert.ok(drops[0].reason.problem.request_id);
  assert.equal(drops[0].events[0].id, "nowhere-1");
  await reporter.close();
});

test("a 400 naming one event drops that event only; the rest of its batch is stored", async () => {
  const tenant = await freshTenant();
  const drops = [];
  const reporter = createEventReporter({
    kind: "billing",
    baseUrl: stack.baseUrl,
    apiKey: stack.apiKey,
    flushIntervalMs: 60_000,
    onDrop: (events, reason) => drops.push({ events, reason }),
  });
  // Well-formed, so report() takes it, but more than a day ahead of the server's clock.
  const ahead = new Date(Date.now() + 3 * 86_400_000).toISOString();
  reporter.report(usage(tenant, 1, "ok-1"));
  reporter.report({ ...usage(tenant, 1, "ahead"), timestamp: ahead });
  reporter.report(usage(tenant, 1, "ok-2"));
  await reporter.flush();
  assert.equal(drops.length, 1);
  assert.deepEqual(drops[0].events.map((e) => e.id), ["ahead"]);
  assert.equal(drops[0].reason.status, 400);
  assert.equal(drops[0].reason.problem.errors[0].index, 1);
  assert.deepEqual((await exported(tenant)).map((e) => e.id).sort(), ["ok-1", "ok-2"]);
  await reporter.close();
});

test("a full queue refuses the newest event and reports it", async () => {
  const tenant = await freshTenant();
  const drops = [];
  const reporter = createEventReporter({
    kind: "billing",
    baseUrl: stack.baseUrl,
    apiKey: stack.apiKey,
    maxQueue: 5,
    flushIntervalMs: 60_000,
    onDrop: (events, reason) => drops.push({ ids: events.map((e) => e.id), reason: reason.kind }),
  });
  const taken = Array.from({ length: 8 }, (_, i) => reporter.report(usage(tenant, 1, `q-${i}`)));
  assert.deepEqual(taken, [true, true, true, true, true, false, false, false]);
  assert.equal(reporter.pending, 5);
  assert.deepEqual(drops, [5, 6, 7].map((i) => ({ ids: [`q-${i}`], reason: "queue_full" })));
  await reporter.flush();
  assert.deepEqual((await exported(tenant)).map((e) => e.id).sort(), ["q-0", "q-1", "q-2", "q-3", "q-4"]);
  await reporter.close();
});

test("close() flushes what is queued, then refuses new events", async () => {
  const tenant = await freshTenant();
  const drops = [];
  const reporter = createEventReporter({
    kind: "billing",
    baseUrl: stack.baseUrl,
    apiKey: stack.apiKey,
    flushIntervalMs: 60_000,
    onDrop: (events, reason) => drops.push(reason.kind),
  });
  for (let i = 0; i < 10; i++) reporter.report(usage(tenant, 1, `c-${i}`));
  await reporter.close();
  assert.equal((await exported(tenant)).length, 10);
  assert.equal(reporter.report(usage(tenant, 1, "late")), false);
  assert.deepEqual(drops, ["closed"]);
});

test("close() gives up after its timeout and drops what was not acknowledged as closed", async () => {
  const drops = [];
  const reporter = createEventReporter({
    kind: "billing",
    baseUrl: "http://127.0.0.1:1",
    apiKey: stack.apiKey,
    retry: { baseMs: 50, maxMs: 100 },
    onDrop: (events, reason) => drops.push({ n: events.length, reason: reason.kind }),
  });
  reporter.report(usage("t", 1, "a"));
  reporter.report(usage("u", 1, "b"));
  const started = Date.now();
  await reporter.close({ timeoutMs: 300 });
  assert.ok(Date.now() - started < 2000);
  assert.equal(reporter.pending, 0);
  assert.deepEqual(drops, [{ n: 1, reason: "closed" }, { n: 1, reason: "closed" }]);
});

test("retry.maxAttempts bounds the sends of a batch", async () => {
  const drops = [];
  const rec = recordingFetch(() => problem(503, "unavailable"));
  const reporter = createEventReporter({
    kind: "billing",
    baseUrl: stack.baseUrl,
    apiKey: stack.apiKey,
    fetch: rec.fetch,
    retry: { baseMs: 1, maxMs: 5, maxAttempts: 3 },
    onDrop: (events, reason) => drops.push(reason),
  });
  reporter.report(usage(stack.tenantId, 1, "never"));
  await reporter.flush();
  assert.equal(rec.posts.length, 3);
  assert.equal(drops.length, 1);
  assert.equal(drops[0].kind, "retries_exhausted");
  assert.equal(drops[0].status, 503);
  await reporter.close();
});

test("audit events are reported too, one tenant per batch", async () => {
  const other = await freshTenant();
  const rec = recordingFetch();
  const drops = [];
  const reporter = createEventReporter({
    kind: "audit",
    baseUrl: stack.baseUrl,
    apiKey: stack.apiKey,
    fetch: rec.fetch,
    onDrop: (events, reason) => drops.push(reason),
  });
  const audit = (tenant_id, i) => ({
    tenant_id,
    timestamp: now(),
    actor_id: "user-1",
    type: "doc.delete",
    resource_id: `doc:${i}`,
    outcome: i % 2 ? "success" : "failure",
    ip: i % 2 ? "192.0.2.1" : "2001:db8::1",
  });
  for (let i = 0; i < 6; i++) reporter.report(audit(i % 2 ? stack.tenantId : other, i));
  await reporter.close();
  assert.deepEqual(drops, []);
  assert.deepEqual(rec.posts.map((p) => [p.size, p.status]), [[3, 202], [3, 202]]);
});

test("report() refuses an event that breaks the API's rules", () => {
  const reporter = createEventReporter({ kind: "billing", baseUrl: stack.baseUrl, apiKey: stack.apiKey });
  const refusedField = (event) => {
    try {
      reporter.report(event);
    } catch (e) {
      assert.ok(e instanceof InvalidEventError);
      return e.field;
    }
    return null;
  };
  const ok = usage(stack.tenantId, 1);
  assert.equal(refusedField({ ...ok, quantity: undefined }), "quantity");
  assert.equal(refusedField({ ...ok, quantity: 1.5 }), "quantity");
  assert.equal(refusedField({ ...ok, type: "has space" }), "type");
  assert.equal(refusedField({ ...ok, timestamp: "yesterday" }), "timestamp");
  assert.equal(refusedField({ ...ok, id: "" }), "id");
  assert.equal(refusedField({ ...ok, colour: "red" }), "colour");
  assert.equal(refusedField({ ...ok, metadata: { blob: "x".repeat(5000) } }), "metadata");
  assert.equal(refusedField(ok), null);
  const audit = createEventReporter({ kind: "audit", baseUrl: stack.baseUrl, apiKey: stack.apiKey });
  assert.throws(
    () => audit.report({ timestamp: now(), actor_id: "u", type: "x", resource_id: "r", outcome: "success", ip: "nope" }),
    (e) => e.field === "ip",
  );
  assert.throws(() => createEventReporter({ kind: "billing", baseUrl: stack.baseUrl, apiKey: "k", maxBatch: MAX_BATCH + 1 }), RangeError);
  return Promise.all([reporter.close(), audit.close()]);
});

test("flushOnExit sends the queue when Node is about to exit", async () => {
  const tenant = await freshTenant();
  const script = `
    import { createEventReporter } from ${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)};
    const r = createEventReporter({ kind: "billing", baseUrl: process.env.B, apiKey: process.env.K, flushIntervalMs: 60000, flushOnExit: true });
    for (let i = 0; i < 3; i++) r.report({ tenant_id: process.env.T, type: "exit.test", quantity: 1, timestamp: new Date().toISOString(), id: "exit-" + i });
  `;
  await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], {
    env: { ...process.env, B: stack.baseUrl, K: stack.apiKey, T: tenant },
    timeout: 20_000,
  });
  assert.deepEqual((await exported(tenant)).map((e) => e.id).sort(), ["exit-0", "exit-1", "exit-2"]);
});
