// Creates one caller of each kind the API document names, for scripts/schemathesis.sh: a
// tenant whose owner has signed in (an Edgeplane access token) and a managed app with an API
// key holding every scope, bound to that tenant. Prints them as shell assignments.
//
//   node scripts/schemathesis-callers.mjs <base url> <operator token>
const [base, operator] = process.argv.slice(2);

async function call(method, path, body, token) {
  const res = await fetch(base + path, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const password = "schemathesis-owner-password-1";
const app = await call("POST", "/v1/apps", { name: "schemathesis" }, operator);
const provisioned = await call(
  "POST",
  "/v1/tenants",
  { name: "Schemathesis", domain: "schemathesis", plan: "pro", owner_email: "owner@schemathesis.example", apps: [app.id] },
  operator,
);
const tenant = provisioned.tenant;
const token = new URL(provisioned.invitation_link).searchParams.get("token");
await call("POST", "/v1/invitations/accept", { token, password });
const signedIn = await call("POST", "/v1/auth/login", {
  tenant: tenant.domain,
  email: "owner@schemathesis.example",
  password,
});
const key = await call(
  "POST",
  `/v1/apps/${app.id}/keys`,
  { scopes: ["flags:read", "bill:write", "bill:read", "log:write", "token:introspect"], tenant_id: tenant.id },
  operator,
);
process.stdout.write(
  `USER_TOKEN=${signedIn.access_token}\nAPI_KEY=${key.secret}\n`,
);
