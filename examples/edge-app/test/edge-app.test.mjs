// The example app (examples/edge-app, built with `make edge-app`) served by the SAME Miniflare
// as Edgeplane (tests/harness/workerd.mjs --app), its `EDGEPLANE` service binding going through
// the harness's counter to Edgeplane, so the tests see every call the app makes. Edgeplane is
// started and seeded as the TypeScript client's tests do (clients/typescript/test/stack.mjs).
//
// Two copies of the app run: `edge-app`, and `edge-app-later`, whose clock runs 16 minutes
// ahead (CLOCK_OFFSET_SECS, honoured in development only), to see a genuine token expire.
//
//   node --test examples/edge-app/test/edge-app.test.mjs      (or `make example-edge-app`)

import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import fs from "node:fs";
import { after, before, test } from "node:test";

import { call, signIn, startStack } from "../../../clients/typescript/test/stack.mjs";

/** What the app's API key holds: no more than the app uses. */
const APP_SCOPES = ["flags:read", "bill:write", "log:write", "token:introspect"];
/** Edgeplane's introspection answers are kept this long by the app (its README). */
const INTROSPECTION_MAX_AGE_MS = 1000;
/** workerd's `Date.now()` is the time of the request's arrival: allow for rounding only. */
const CLOCK_SLOP_MS = 50;

let stack;
let apps;
let running;

before(async () => {
  running = await startStack({
    harnessArgs: [
      "--app", "edge-app=examples/edge-app",
      "--app", "edge-app-later=examples/edge-app",
      "--app-var", "edge-app-later:EDGE_APP_ENV=development",
      "--app-var", "edge-app-later:CLOCK_OFFSET_SECS=960",
    ],
  });
  stack = running.stack;
  // The app's own key, then the vars only known now: a deployment's `wrangler secret put`.
  const key = await call(stack.baseUrl, "POST", `/v1/apps/${stack.appId}/keys`, {
    token: stack.operatorToken,
    body: { name: "edge-app", scopes: APP_SCOPES },
    status: 201,
  });
  const vars = { EDGEPLANE_ISSUER: stack.baseUrl, EDGEPLANE_API_KEY: key.secret };
  const ready = await running.send({ app_vars: { "edge-app": vars, "edge-app-later": vars } });
  apps = ready.apps;
});

after(async () => {
  if (!running) return;
  await running.stop();
  fs.rmSync(running.dir, { recursive: true, force: true });
});

/** A request to an app; resolves to `{status, headers, body}` (body parsed when JSON). */
async function app(name, method, route, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(new URL(route, apps[name].url), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const type = res.headers.get("content-type") ?? "";
  return { status: res.status, headers: res.headers, body: /json/.test(type) && text ? JSON.parse(text) : text };
}

/** Every request the app `name` made to Edgeplane since it started, as "METHOD /path". */
async function edgeplaneCalls(name = "edge-app") {
  const res = await fetch(apps[name].edgeplane_calls_url);
  return (await res.json()).calls;
}

/** Asserts a problem+json refusal with `status` and `code`. */
function assertProblem(res, status, code) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  assert.equal(res.body.code, code, JSON.stringify(res.body));
  assert.equal(res.body.status, status);
  assert.match(res.body.type, /^https:\/\//);
  assert.ok(res.body.title);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const b64 = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const part = (token, i) => JSON.parse(Buffer.from(token.split(".")[i], "base64url").toString());

test("a valid token is served; once the keys are cached, requests make no call to Edgeplane", async () => {
  const { access_token: token } = await signIn(stack);
  assert.deepEqual(await edgeplaneCalls(), [], "nothing before the first request");
  const health = await app("edge-app", "GET", "/health");
  assert.equal(health.status, 200);
  assert.deepEqual(await edgeplaneCalls(), [], "/health needs no Edgeplane");

  const first = await app("edge-app", "GET", "/me", { token });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(first.body.tenant_id, stack.tenantId);
  assert.equal(first.body.role, "owner");
  assert.deepEqual(await edgeplaneCalls(), ["GET /.well-known/jwks.json"], "the key set, once");

  for (let i = 0; i < 25; i++) {
    const again = await app("edge-app", "GET", "/me", { token });
    assert.equal(again.status, 200);
  }
  const { access_token: second } = await signIn(stack);
  assert.equal((await app("edge-app", "GET", "/me", { token: second })).status, 200);
  assert.deepEqual(await edgeplaneCalls(), ["GET /.well-known/jwks.json"], "26 more requests, no call");
});

test("a revoked session is refused on writes within 1 s; reads serve it until it expires", async () => {
  const { access_token: token } = await signIn(stack);
  const introspections = async () => (await edgeplaneCalls()).filter((c) => c === "POST /oauth/introspect").length;
  const before = await introspections();
  const write = () => app("edge-app", "POST", "/projects/p1/tasks", { token, body: { title: "write" } });

  const t0 = Date.now();
  assert.equal((await write()).status, 201);
  assert.equal(await introspections(), before + 1, "a write introspects");
  const cachedWrite = await write();
  assert.equal(cachedWrite.status, 201);
  if (Date.now() - t0 < INTROSPECTION_MAX_AGE_MS - 100) {
    assert.equal(await introspections(), before + 1, "within the second, the cached answer");
  }

  await call(stack.baseUrl, "POST", "/v1/auth/logout", { token, status: 204 });
  const loggedOut = Date.now();
  // The bound: the answer cached before the logout is at most 1 s old, so no write that
  // reaches the app 1 s after the logout may be served (the app's clock is this machine's; a
  // loaded machine only delays requests, it cannot make a late one look early).
  let refused;
  while (!refused && Date.now() - loggedOut < INTROSPECTION_MAX_AGE_MS + 1500) {
    const sentAt = Date.now();
    const res = await write();
    if (res.status === 201) {
      assert.ok(sentAt - loggedOut < INTROSPECTION_MAX_AGE_MS + CLOCK_SLOP_MS, `served ${sentAt - loggedOut} ms after the logout`);
      await sleep(50);
    } else {
      refused = res;
    }
  }
  assert.ok(refused, "still served 2.5 s after the logout");
  assertProblem(refused, 401, "token_revoked");
  assert.match(refused.headers.get("www-authenticate"), /invalid_token/);
  // And from then on, every write.
  assertProblem(await write(), 401, "token_revoked");

  // The local-only path (documented): the token is still well signed and unexpired, so reads
  // serve it until `exp`; the same app 16 minutes on refuses it as expired.
  assert.equal((await app("edge-app", "GET", "/me", { token })).status, 200);
  assertProblem(await app("edge-app-later", "GET", "/me", { token }), 401, "token_expired");
});

test("missing, expired and forged tokens are refused with problem+json 401", async () => {
  const { access_token: token } = await signIn(stack);
  const me = (t, name = "edge-app") => app(name, "GET", "/me", { token: t });

  const missing = await app("edge-app", "GET", "/me");
  assertProblem(missing, 401, "missing_token");
  assert.equal(missing.headers.get("www-authenticate"), "Bearer");

  // Expired: the genuine token, to the copy of the app whose clock is 16 minutes on (its
  // 15-minute lifetime plus the 30 s tolerance have passed there); the same token is good here.
  assert.equal((await me(token)).status, 200);
  assertProblem(await me(token, "edge-app-later"), 401, "token_expired");

  const [h, p, s] = token.split(".");
  const header = part(token, 0);
  const claims = part(token, 1);
  const forged = async (t, check) => {
    const res = await me(t);
    assertProblem(res, 401, "token_invalid");
    assert.equal(res.body.check, check, JSON.stringify(res.body));
  };
  // Claims changed under the genuine signature.
  await forged(`${h}.${b64({ ...claims, tid: "00000000-0000-4000-8000-000000000000", role: "owner" })}.${s}`, "signature");
  // Signed with another Ed25519 key under the genuine kid.
  const { privateKey } = generateKeyPairSync("ed25519");
  const input = `${h}.${b64({ ...claims, sub: "someone-else" })}`;
  await forged(`${input}.${sign(null, Buffer.from(input), privateKey).toString("base64url")}`, "signature");
  // alg none, and HS256 (the classic confusion), refused before any key is used.
  await forged(`${b64({ ...header, alg: "none" })}.${p}.`, "algorithm");
  await forged(`${b64({ ...header, alg: "HS256" })}.${p}.${s}`, "algorithm");
  // Another issuer's token: the operator issuer's (scripts/dev-issuer.mjs), not Edgeplane's key.
  const other = await me(stack.operatorToken);
  assertProblem(other, 401, "token_invalid");
  assert.notEqual(other.body.check, undefined);
  await forged("not.a.token", "malformed");
});

test("flags are read through the service binding, a change seen within the bound", async () => {
  const { access_token: token } = await signIn(stack);
  const setBanner = (value) =>
    call(stack.baseUrl, "PUT", `/v1/tenants/${stack.tenantId}/flags/edge-banner`, {
      token: stack.operatorToken,
      body: { type: "string", value },
    });
  await setBanner("first");
  const features = () => app("edge-app", "GET", "/features", { token });
  const ofrep = async () => (await edgeplaneCalls()).filter((c) => c === "POST /ofrep/v1/evaluate/flags").length;

  const before = await ofrep();
  const first = await features();
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(first.body.flags["edge-banner"], "first");
  const again = await features();
  assert.equal(again.body.flags["edge-banner"], "first");
  assert.equal(again.body.not_modified, true, "the second read is Edgeplane's 304 (ETag)");
  assert.equal(await ofrep(), before + 2, "each read went through the binding");

  await setBanner("second");
  const changed = Date.now();
  // Edgeplane's bound for another isolate of the location is 1 s (README, Freshness at the
  // edge): no read sent 1 s after the change may answer the old value.
  let seen = false;
  while (!seen && Date.now() - changed < 3000) {
    const sentAt = Date.now();
    const res = await features();
    assert.equal(res.status, 200);
    seen = res.body.flags["edge-banner"] === "second";
    if (!seen) {
      assert.ok(sentAt - changed < 1000 + CLOCK_SLOP_MS, `old value ${sentAt - changed} ms after the change`);
      await sleep(50);
    }
  }
  assert.ok(seen, "the change never showed");
});

test("a task's billing and audit events reach Edgeplane after the response", async () => {
  const { access_token: token } = await signIn(stack);
  const created = await app("edge-app", "POST", "/projects/roadmap/tasks", { token, body: { title: "Ship it" } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.project_id, "roadmap");
  const id = `task-${created.body.id}`;

  const deadline = Date.now() + 5000;
  let billing;
  let audit;
  while (Date.now() < deadline && !(billing && audit)) {
    const page = await call(stack.baseUrl, "GET", `/v1/billing/events?tenant=${stack.tenantId}&limit=1000`, {
      token: stack.apiKey,
      status: 200,
    });
    billing ??= page.items.find((e) => e.id === id);
    const csv = await fetch(
      new URL(`/v1/audit/export.csv?tenant=${stack.tenantId}&action=task.create`, stack.baseUrl),
      { headers: { authorization: `Bearer ${stack.operatorToken}` } },
    ).then((r) => r.text());
    audit ??= csv.split("\n").find((row) => row.includes(id));
    if (!(billing && audit)) await sleep(100);
  }
  assert.ok(billing, `billing event ${id} not exported`);
  assert.equal(billing.type, "task.created");
  assert.equal(billing.quantity, 1);
  assert.ok(audit, `audit event ${id} not exported`);
  assert.match(audit, /task\.create/);
  assert.match(audit, new RegExp(`projects/roadmap/tasks/${created.body.id}`));

  const calls = await edgeplaneCalls();
  assert.ok(calls.includes("POST /v1/billing/events") && calls.includes("POST /v1/audit/events"), calls.join(", "));
});

test("bad requests are problem+json too", async () => {
  const { access_token: token } = await signIn(stack);
  assertProblem(await app("edge-app", "GET", "/nope"), 404, "not_found");
  const wrongMethod = await app("edge-app", "GET", "/projects/p1/tasks", { token });
  assertProblem(wrongMethod, 405, "method_not_allowed");
  assert.equal(wrongMethod.headers.get("allow"), "POST");
  assertProblem(await app("edge-app", "POST", "/projects/p1/tasks", { token, body: { title: "" } }), 400, "invalid_body");
});
