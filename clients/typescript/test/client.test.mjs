// The typed API client against the real worker: an operator's calls, an app's flag evaluation
// over OFREP, and introspection seeing a sign-out at once.

import assert from "node:assert/strict";
import { before, test } from "node:test";

import { createEdgeplaneClient, EdgeplaneError } from "../dist/index.js";
import { signIn, useStack } from "./stack.mjs";

let stack;
before(async () => {
  stack = await useStack();
});

test("an operator lists tenants with the typed client", async () => {
  const operator = createEdgeplaneClient({ baseUrl: stack.baseUrl, accessToken: stack.operatorToken });
  const { data, error, response } = await operator.GET("/v1/tenants", {
    params: { query: { q: "acme", status: "active", limit: 10 } },
  });
  assert.equal(error, undefined);
  assert.equal(response.status, 200);
  const acme = data.items.find((t) => t.id === stack.tenantId);
  assert.equal(acme?.domain, "acme");
  assert.equal(acme?.status, "active");
});

test("a credential given as a function is read on every request", async () => {
  let calls = 0;
  const operator = createEdgeplaneClient({
    baseUrl: `${stack.baseUrl}/`,
    accessToken: async () => {
      calls++;
      return stack.operatorToken;
    },
  });
  const { data } = await operator.GET("/v1/tenants/{id}", { params: { path: { id: stack.tenantId } } });
  assert.equal(data?.id, stack.tenantId);
  await operator.GET("/v1/tenants/{id}", { params: { path: { id: stack.tenantId } } });
  assert.equal(calls, 2);
});

test("a refused call answers problem details", async () => {
  const app = createEdgeplaneClient({ baseUrl: stack.baseUrl, apiKey: stack.apiKey });
  // An API key is not an operator.
  const { data, error, response } = await app.GET("/v1/tenants", {});
  assert.equal(data, undefined);
  assert.equal(response.status, 401);
  assert.equal(error.status, 401);
  assert.match(error.type, /^https:\/\/edgeplane\.dev\/problems\//);
  assert.ok(error.request_id);
});

test("an app evaluates a flag over OFREP with the typed client", async () => {
  const operator = createEdgeplaneClient({ baseUrl: stack.baseUrl, accessToken: stack.operatorToken });
  const put = await operator.PUT("/v1/tenants/{id}/flags/{key}", {
    params: { path: { id: stack.tenantId, key: "typed-checkout" } },
    body: {
      type: "boolean",
      value: false,
      rules: [{ conditions: [{ attribute: "email", op: "ends_with", values: ["@acme.example"] }], value: true }],
    },
  });
  assert.ok([200, 201].includes(put.response.status), JSON.stringify(put.error));

  const app = createEdgeplaneClient({ baseUrl: stack.baseUrl, apiKey: stack.apiKey });
  const evaluate = (email) =>
    app.POST("/ofrep/v1/evaluate/flags/{key}", {
      params: { path: { key: "typed-checkout" } },
      body: { context: { tenantId: stack.tenantId, targetingKey: "user-1", email } },
    });
  const staff = await evaluate("ana@acme.example");
  assert.equal(staff.error, undefined, JSON.stringify(staff.error));
  assert.equal(staff.data.value, true);
  const other = await evaluate("bob@elsewhere.example");
  assert.equal(other.data.value, false);
});

test("introspection answers active, then inactive at once after the sign-out", async () => {
  const app = createEdgeplaneClient({ baseUrl: stack.baseUrl, apiKey: stack.apiKey });
  const { access_token: token } = await signIn(stack);
  const active = await app.introspect(token);
  assert.equal(active.active, true);
  assert.equal(active.tid, stack.tenantId);
  assert.equal(active.aud, "edgeplane");

  // The same client, the user's own token for this one call.
  const out = await app.POST("/v1/auth/logout", { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(out.response.status, 204);
  assert.deepEqual(await app.introspect(token), { active: false });
});

test("introspection without the key's scope is an EdgeplaneError", async () => {
  const operator = createEdgeplaneClient({ baseUrl: stack.baseUrl, accessToken: stack.operatorToken });
  const issued = await operator.POST("/v1/apps/{id}/keys", {
    params: { path: { id: stack.appId } },
    body: { name: "flags only", scopes: ["flags:read"] },
  });
  const flagsOnly = createEdgeplaneClient({ baseUrl: stack.baseUrl, apiKey: issued.data.secret });
  await assert.rejects(flagsOnly.introspect("x.y.z"), (e) => {
    assert.ok(e instanceof EdgeplaneError);
    assert.equal(e.status, 403);
    assert.equal(e.problem?.status, 403);
    assert.ok(e.requestId);
    return true;
  });
});

test("one credential per client, never as a header", () => {
  assert.throws(() => createEdgeplaneClient({ baseUrl: stack.baseUrl, apiKey: "a", accessToken: "b" }), TypeError);
  assert.throws(
    () => createEdgeplaneClient({ baseUrl: stack.baseUrl, headers: { "X-API-Key": stack.apiKey } }),
    TypeError,
  );
  assert.throws(() => createEdgeplaneClient({ baseUrl: "edgeplane.example" }), TypeError);
});
