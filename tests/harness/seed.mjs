// What a managed app needs of a fresh Edgeplane, seeded through its JSON API as an operator:
// an app with redirect URIs and browser origins, a tenant that has it enabled, an owner who
// accepted the invitation (with a generated password), and a server API key of the app holding
// every scope. `make dev` seeds the same through curl (scripts/dev.sh); the TypeScript client's
// tests (clients/typescript/test/stack.mjs) and the Next.js example's browser test seed with this.

import { randomBytes } from "node:crypto";

/** Every scope an API key can hold. */
export const ALL_SCOPES = ["flags:read", "bill:write", "bill:read", "log:write", "token:introspect"];

/** A JSON call that must answer `status`; resolves to the parsed body (or null). */
export async function call(baseUrl, method, route, { token, body, status } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(new URL(route, baseUrl), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (status !== undefined && res.status !== status) {
    throw new Error(`${method} ${route} answered ${res.status}, expected ${status}: ${text.slice(0, 500)}`);
  }
  return text ? JSON.parse(text) : null;
}

/**
 * Provisions a tenant named `domain` and enables `stack.appId` for it (as `stack.operatorToken`
 * on `stack.baseUrl`); resolves to its id and the owner's invitation token.
 */
export async function provisionTenant(stack, domain) {
  const created = await call(stack.baseUrl, "POST", "/v1/tenants", {
    token: stack.operatorToken,
    body: { name: domain, domain, plan: "pro", owner_email: `owner@${domain}.example` },
    status: 201,
  });
  const tenantId = created.tenant.id;
  await call(stack.baseUrl, "POST", `/v1/tenants/${tenantId}/apps/${stack.appId}`, {
    token: stack.operatorToken,
    status: 200,
  });
  return { tenantId, invitationToken: new URL(created.invitation_link).searchParams.get("token") };
}

/**
 * Seeds an app, a tenant with its owner, and an all-scope key. Resolves to `{baseUrl,
 * operatorToken, appId, tenantId, tenantDomain, ownerEmail, ownerPassword, apiKey}`.
 */
export async function seedApp({
  baseUrl,
  operatorToken,
  appName = "CRM",
  redirectUris,
  allowedOrigins = [],
  tenantDomain = "acme",
}) {
  const seeded = { baseUrl, operatorToken, tenantDomain, ownerEmail: `owner@${tenantDomain}.example` };
  const app = await call(baseUrl, "POST", "/v1/apps", {
    token: operatorToken,
    body: { name: appName, redirect_uris: redirectUris, allowed_origins: allowedOrigins },
    status: 201,
  });
  seeded.appId = app.id;
  const { tenantId, invitationToken } = await provisionTenant(seeded, tenantDomain);
  seeded.tenantId = tenantId;
  const key = await call(baseUrl, "POST", `/v1/apps/${app.id}/keys`, {
    token: operatorToken,
    body: { name: "all scopes", scopes: ALL_SCOPES },
    status: 201,
  });
  seeded.apiKey = key.secret;
  seeded.ownerPassword = randomBytes(18).toString("base64url");
  await call(baseUrl, "POST", "/v1/invitations/accept", {
    body: { token: invitationToken, password: seeded.ownerPassword },
    status: 200,
  });
  return seeded;
}
