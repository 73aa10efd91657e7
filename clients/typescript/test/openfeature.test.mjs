// The OpenFeature helpers against the real worker: the server SDK with the OFREP provider and an
// app-wide key (the tenant in the context), the web SDK with the OFREP web provider and a
// browser key (tenant-bound, flags:read only).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { OpenFeature as ServerFeatures } from "@openfeature/server-sdk";
import { OpenFeature as WebFeatures } from "@openfeature/web-sdk";

import { createEdgeplaneClient } from "../dist/index.js";
import { createOpenFeatureProvider } from "../dist/openfeature.js";
import { createOpenFeatureWebProvider } from "../dist/openfeature-web.js";
import { useStack } from "./stack.mjs";

let stack;
let operator;
before(async () => {
  stack = await useStack();
  operator = createEdgeplaneClient({ baseUrl: stack.baseUrl, accessToken: stack.operatorToken });
  const set = async (key, body) => {
    const { error, response } = await operator.PUT("/v1/tenants/{id}/flags/{key}", {
      params: { path: { id: stack.tenantId, key } },
      body,
    });
    assert.ok([200, 201].includes(response.status), JSON.stringify(error));
  };
  await set("of-checkout", {
    type: "boolean",
    value: false,
    rules: [{ conditions: [{ attribute: "plan", op: "in", values: ["gold"] }], value: true }],
  });
  await set("of-banner", { type: "string", value: "Welcome" });
});
after(async () => {
  await ServerFeatures.close();
  await WebFeatures.close();
});

test("the server OFREP provider evaluates flags with the app's key", async () => {
  await ServerFeatures.setProviderAndWait(
    "edgeplane",
    createOpenFeatureProvider({ baseUrl: stack.baseUrl, apiKey: stack.apiKey, timeoutMs: 10_000 }),
  );
  const flags = ServerFeatures.getClient("edgeplane");
  const ctx = { tenantId: stack.tenantId, targetingKey: "user-1" };
  assert.equal(await flags.getBooleanValue("of-checkout", false, { ...ctx, plan: "gold" }), true);
  assert.equal(await flags.getBooleanValue("of-checkout", true, { ...ctx, plan: "free" }), false);
  const banner = await flags.getStringDetails("of-banner", "none", ctx);
  assert.equal(banner.value, "Welcome");
  assert.equal(banner.errorCode, undefined);
  const missing = await flags.getNumberDetails("of-missing", 7, ctx);
  assert.equal(missing.value, 7);
  assert.equal(missing.errorCode, "FLAG_NOT_FOUND");
});

test("the web OFREP provider evaluates the page's flags with a browser key", async () => {
  const issued = await operator.POST("/v1/apps/{id}/keys", {
    params: { path: { id: stack.appId } },
    body: { name: "web", kind: "browser", tenant_id: stack.tenantId, scopes: ["flags:read"] },
  });
  assert.equal(issued.error, undefined, JSON.stringify(issued.error));
  await WebFeatures.setContext("edgeplane-web", { targetingKey: "web-user-1", plan: "gold" });
  await WebFeatures.setProviderAndWait(
    "edgeplane-web",
    createOpenFeatureWebProvider({ baseUrl: stack.baseUrl, apiKey: issued.data.secret, cacheMode: "disabled" }),
  );
  const flags = WebFeatures.getClient("edgeplane-web");
  assert.equal(flags.getBooleanValue("of-checkout", false), true);
  assert.equal(flags.getStringValue("of-banner", "none"), "Welcome");
});
