// What this app needs registered in Edgeplane, done through the operator API: its redirect URIs
// (the callback, and the home page that sign-out returns to), the flag it reads, and the env
// file it runs with. Used by `make dev-app` (scripts/dev-app.mjs) and by the browser test.

import { randomBytes } from "node:crypto";
import fs from "node:fs";

/** The flag the orders page reads. */
export const FLAG_KEY = "new-orders-ui";

/** The redirect URIs to register for an app served at `appUrl`: the callback, then sign-out's return. */
export function appRedirectUris(appUrl) {
  return [`${appUrl}/auth/callback`, `${appUrl}/`];
}

async function call(baseUrl, token, method, route, body) {
  const res = await fetch(new URL(route, baseUrl), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route} answered ${res.status}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

/**
 * Adds the app's redirect URIs and origin to the registered app `appId`, keeping those it has
 * (PATCH replaces the lists).
 */
export async function registerAppUrls({ baseUrl, operatorToken, appId, appUrl }) {
  const app = await call(baseUrl, operatorToken, "GET", `/v1/apps/${appId}`);
  const union = (a, b) => [...new Set([...a, ...b])];
  return call(baseUrl, operatorToken, "PATCH", `/v1/apps/${appId}`, {
    redirect_uris: union(app.redirect_uris, appRedirectUris(appUrl)),
    allowed_origins: union(app.allowed_origins, [appUrl]),
  });
}

/** Sets the tenant's boolean flag `key` to `value` (PUT replaces it). */
export function setFlag({ baseUrl, operatorToken, tenantId, key = FLAG_KEY, value }) {
  return call(baseUrl, operatorToken, "PUT", `/v1/tenants/${tenantId}/flags/${key}`, {
    type: "boolean",
    value,
    description: "The orders page's new layout (examples/nextjs-app)",
  });
}

/** Whether the tenant has the flag `key`. */
export async function hasFlag({ baseUrl, operatorToken, tenantId, key = FLAG_KEY }) {
  const { flags } = await call(baseUrl, operatorToken, "GET", `/v1/tenants/${tenantId}/flags`);
  return flags.some((f) => f.key === key);
}

/**
 * The app's environment (lib/config.ts reads it): every variable, the optional ones empty, so
 * that nothing of an .env.local comes in where this is the process's environment (Next reads
 * env files only for variables the process does not have).
 */
export function appEnv({
  baseUrl,
  appId,
  apiKey,
  appUrl,
  clientSecret = "",
  sessionSecret = randomBytes(32).toString("base64url"),
}) {
  return {
    EDGEPLANE_URL: baseUrl,
    EDGEPLANE_CLIENT_ID: appId,
    EDGEPLANE_CLIENT_SECRET: clientSecret,
    EDGEPLANE_API_KEY: apiKey,
    APP_URL: appUrl,
    SESSION_SECRET: sessionSecret,
  };
}

/** Writes `env` as a dotenv file readable by its owner only. */
export function writeEnvFile(file, env, header) {
  const lines = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  fs.writeFileSync(file, `${header ? `# ${header}\n` : ""}${lines.join("\n")}\n`, { mode: 0o600 });
}

/** Reads KEY=value lines of a dotenv file (none when it is missing). */
export function readEnvFile(file) {
  const vars = {};
  if (!fs.existsSync(file)) return vars;
  for (const line of fs.readFileSync(file, "utf8").split(/\r?\n/)) {
    const m = line.match(/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/);
    if (m) vars[m[1]] = m[2];
  }
  return vars;
}
