// The browser tests' own footing, independent of the console: Edgeplane runs on this project's
// runtime and trusts the run's operator issuer, and the development IdP signs a browser in with
// its login form and issues the ID token the console will read (EdDSA, roles, email, nonce).

import { createHash, createPublicKey, randomBytes, verify } from "node:crypto";
import fs from "node:fs";
import { expect, expectAccessible, test } from "./fixtures.mjs";
import { CONSOLE_CALLBACK_PATH } from "./harness.mjs";

const HEALTH_RUNTIME = { workerd: "workers", spin: "spin" };

test("Edgeplane runs on the project's runtime and accepts the run's operator tokens", async ({
  request,
  edgeplane,
}) => {
  const health = await request.get("/v1/health");
  expect(health.status()).toBe(200);
  expect((await health.json()).runtime).toBe(HEALTH_RUNTIME[edgeplane.runtime]);

  for (const role of ["operator", "auditor"]) {
    const tenants = await request.get("/v1/tenants", {
      headers: { authorization: `Bearer ${await edgeplane.operatorToken(role)}` },
    });
    expect(tenants.status(), `GET /v1/tenants as ${role}`).toBe(200);
  }
});

test("the development IdP signs a browser in and issues the console's ID token", async ({
  page,
  request,
  edgeplane,
  accounts,
  origins,
  saveScreenshot,
}) => {
  const discovery = await (await request.get(`${edgeplane.idp.issuer}/.well-known/openid-configuration`)).json();
  expect(discovery.issuer).toBe(edgeplane.idp.issuer);
  const jwks = await (await request.get(discovery.jwks_uri)).json();
  const trusted = JSON.parse(readVar(edgeplane.envFile, "OPERATOR_DEV_JWKS"));
  expect(jwks.keys.map(sorted)).toEqual(trusted.keys.map(sorted));

  // The console's side of the flow, by hand: PKCE, state, nonce; the callback is answered here.
  const verifier = randomBytes(32).toString("base64url");
  const state = randomBytes(16).toString("base64url");
  const nonce = randomBytes(16).toString("base64url");
  const redirectUri = `${edgeplane.baseURL}${CONSOLE_CALLBACK_PATH}`;
  const authorize = new URL(discovery.authorization_endpoint);
  authorize.search = new URLSearchParams({
    client_id: edgeplane.idp.clientId,
    response_type: "code",
    scope: "openid email profile roles",
    redirect_uri: redirectUri,
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
    state,
    nonce,
  }).toString();
  // The IdP's 303 lands on Edgeplane's callback, which this test does not drive (Playwright
  // routes only the first request of a redirect chain): a console refuses a state it never
  // issued without redeeming the code, which this test then redeems itself.
  const toCallback = (url) => url.origin === edgeplane.baseURL && url.pathname === CONSOLE_CALLBACK_PATH;
  let callback;
  await origins.during("sign-in", edgeplane.idp.origin, async () => {
    await page.goto(authorize.href);
    await expect(page.getByRole("heading", { level: 1 })).toContainText("Sign in");
    await expectAccessible(page);
    await saveScreenshot("dev-idp-login");

    await page.getByLabel("Email").fill(accounts.operator.email);
    await page.getByLabel("Password").fill(`${accounts.operator.password}-wrong`);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert")).toHaveText("Wrong email or password.");
    await expect(page.getByLabel("Email")).toHaveValue(accounts.operator.email);
    await expectAccessible(page);

    await page.getByLabel("Password").fill(accounts.operator.password);
    const reached = page.waitForRequest((r) => toCallback(new URL(r.url())));
    await page.getByRole("button", { name: "Sign in" }).click();
    callback = new URL((await reached).url());
  });
  expect(callback.searchParams.get("state")).toBe(state);

  const token = await request.post(discovery.token_endpoint, {
    form: {
      grant_type: "authorization_code",
      code: callback.searchParams.get("code"),
      redirect_uri: redirectUri,
      code_verifier: verifier,
      client_id: edgeplane.idp.clientId,
      client_secret: edgeplane.idp.clientSecret,
    },
  });
  expect(token.status()).toBe(200);
  const [header, claims, signature] = (await token.json()).id_token.split(".");
  const { alg, kid } = decode(header);
  expect(alg).toBe("EdDSA");
  const key = trusted.keys.find((k) => k.kid === kid);
  expect(key, `kid ${kid} in OPERATOR_DEV_JWKS`).toBeTruthy();
  const signed = Buffer.from(`${header}.${claims}`);
  expect(verify(null, signed, createPublicKey({ key, format: "jwk" }), Buffer.from(signature, "base64url"))).toBe(true);
  expect(decode(claims)).toMatchObject({
    iss: edgeplane.idp.issuer,
    aud: edgeplane.idp.clientId,
    sub: accounts.operator.sub,
    email: accounts.operator.email,
    roles: ["operator"],
    nonce,
  });
});

function decode(part) {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}

function sorted(obj) {
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => a.localeCompare(b)));
}

function readVar(file, name) {
  const line = fs.readFileSync(file, "utf8").split("\n").find((l) => l.startsWith(`${name}=`));
  return line.slice(name.length + 1).replace(/^'(.*)'$/, "$1");
}
