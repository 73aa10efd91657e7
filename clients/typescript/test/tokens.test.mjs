// Access-token verification against the real worker's keys: a real token verifies; expired,
// forged, tampered, `none`/HS256, wrong-issuer and wrong-audience tokens are refused, each with
// its code; an app's OIDC access token verifies for the app's audience and an ID token never
// does; after a key rotation a new token verifies once the key set is fetched again.

import assert from "node:assert/strict";
import { createHash, createHmac, generateKeyPairSync, randomBytes } from "node:crypto";
import { before, test } from "node:test";

import { SignJWT } from "jose";

import { createEdgeplaneClient, createTokenVerifier, TokenVerificationError } from "../dist/index.js";
import { REDIRECT_URI, signIn, useStack } from "./stack.mjs";

let stack;
let token;
let claims;
before(async () => {
  stack = await useStack();
  token = (await signIn(stack)).access_token;
  claims = decode(token, 1);
});

const decode = (jwt, part) => JSON.parse(Buffer.from(jwt.split(".")[part], "base64url").toString());
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Asserts that `promise` rejects with a TokenVerificationError of `code`. */
async function refused(promise, code) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof TokenVerificationError, `not a TokenVerificationError: ${e}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

test("a real access token verifies, with its claims", async () => {
  // The issuer as a base URL may end in a slash; `iss` never does.
  const verifier = createTokenVerifier({ issuer: `${stack.baseUrl}/` });
  const verified = await verifier.verify(token);
  assert.equal(verified.iss, stack.baseUrl);
  assert.equal(verified.aud, "edgeplane");
  assert.equal(verified.tid, stack.tenantId);
  assert.equal(verified.role, "owner");
  assert.equal(typeof verified.sub, "string");
  assert.equal(typeof verified.sid, "string");
  assert.equal(typeof verified.scope, "string");
  assert.ok(verified.exp > Date.now() / 1000);
});

test("an expired token is refused, within the clock tolerance it is not", async () => {
  const at = (seconds) => () => seconds * 1000;
  await refused(createTokenVerifier({ issuer: stack.baseUrl, now: at(claims.exp + 31) }).verify(token), "expired");
  // Edgeplane's own leeway, 30 s, is the default.
  await createTokenVerifier({ issuer: stack.baseUrl, now: at(claims.exp + 29) }).verify(token);
  await refused(
    createTokenVerifier({ issuer: stack.baseUrl, clockToleranceSec: 0, now: at(claims.exp) }).verify(token),
    "expired",
  );
});

test("a token signed with another Ed25519 key is refused", async () => {
  const verifier = createTokenVerifier({ issuer: stack.baseUrl });
  const { privateKey } = generateKeyPairSync("ed25519");
  const { kid } = decode(token, 0);
  const forge = (header) => new SignJWT(claims).setProtectedHeader(header).sign(privateKey);
  // The published key's kid: the signature does not verify.
  await refused(verifier.verify(await forge({ alg: "EdDSA", typ: "at+jwt", kid })), "signature");
  // A kid of its own: no published key has it.
  await refused(verifier.verify(await forge({ alg: "EdDSA", typ: "at+jwt", kid: "forged-key" })), "unknown_key");
  // The real signature over other claims.
  const [h, , s] = token.split(".");
  await refused(verifier.verify(`${h}.${b64({ ...claims, role: "admin" })}.${s}`), "signature");
});

test("alg none and HS256 keyed with the public key are refused before any key is used", async () => {
  const verifier = createTokenVerifier({ issuer: stack.baseUrl });
  const { kid } = decode(token, 0);
  const body = b64(claims);
  await refused(verifier.verify(`${b64({ alg: "none", typ: "at+jwt", kid })}.${body}.`), "algorithm");
  const jwks = await (await fetch(`${stack.baseUrl}/.well-known/jwks.json`)).json();
  const input = `${b64({ alg: "HS256", typ: "at+jwt", kid })}.${body}`;
  const mac = createHmac("sha256", Buffer.from(jwks.keys[0].x, "base64url")).update(input).digest("base64url");
  await refused(verifier.verify(`${input}.${mac}`), "algorithm");
  await refused(verifier.verify("not a token"), "malformed");
  await refused(verifier.verify(`${input}.${"A".repeat(5000)}`), "malformed");
});

test("a token of another issuer or for another audience is refused", async () => {
  const jwksUrl = `${stack.baseUrl}/.well-known/jwks.json`;
  await refused(createTokenVerifier({ issuer: "https://other.example", jwksUrl }).verify(token), "issuer");
  await refused(createTokenVerifier({ issuer: stack.baseUrl, audience: stack.appId }).verify(token), "audience");
  await refused(createTokenVerifier({ issuer: stack.baseUrl, audience: ["crm", "billing"] }).verify(token), "audience");
});

test("an app's OIDC access token verifies for the app's audience; its ID token never does", async () => {
  const { access_token: accessToken, id_token: idToken } = await oidcSignIn();
  const forApp = createTokenVerifier({ issuer: stack.baseUrl, audience: stack.appId });
  const verified = await forApp.verify(accessToken);
  assert.equal(verified.aud, stack.appId);
  assert.equal(verified.tid, stack.tenantId);
  await refused(createTokenVerifier({ issuer: stack.baseUrl }).verify(accessToken), "audience");
  // Same issuer, key and audience, but an ID token (typ JWT) is not an access token.
  await refused(forApp.verify(idToken), "type");
});

test("an unreachable key set is reported as such", async () => {
  const verifier = createTokenVerifier({ issuer: stack.baseUrl, jwksUrl: "http://127.0.0.1:1/jwks.json" });
  await refused(verifier.verify(token), "jwks_unavailable");
});

test("after a key rotation a new token verifies once the cooldown allows a refetch", async () => {
  const cooldownMs = 1500;
  let fetches = 0;
  const verifier = createTokenVerifier({
    issuer: stack.baseUrl,
    jwksCooldownMs: cooldownMs,
    fetch: (url, init) => {
      fetches++;
      return fetch(url, init);
    },
  });
  const old = (await signIn(stack)).access_token;
  await verifier.verify(old);
  const fetchedAt = Date.now();
  assert.equal(fetches, 1);

  const operator = createEdgeplaneClient({ baseUrl: stack.baseUrl, accessToken: stack.operatorToken });
  const rotation = await operator.POST("/v1/signing-keys/rotate", {});
  assert.equal(rotation.error, undefined, JSON.stringify(rotation.error));
  const fresh = (await signIn(stack)).access_token;
  assert.notEqual(decode(fresh, 0).kid, decode(old, 0).kid);

  // Within the cooldown the unknown kid does not trigger a fetch (jose's guard against floods).
  if (Date.now() - fetchedAt < cooldownMs - 200) {
    await refused(verifier.verify(fresh), "unknown_key");
    assert.equal(fetches, 1);
  }
  await sleep(Math.max(0, fetchedAt + cooldownMs + 100 - Date.now()));
  assert.equal((await verifier.verify(fresh)).tid, stack.tenantId);
  assert.equal(fetches, 2);
  // The previous key stays published until its tokens expire.
  await verifier.verify(old);
  assert.equal(fetches, 2);
});

/**
 * Signs the owner in to the seeded app through Edgeplane's OpenID provider (code + PKCE, the
 * universal login page by plain HTTP, as tests/harness/oidc-client.mjs does).
 */
async function oidcSignIn() {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const cookies = new Map();
  const keep = (res) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      cookies.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return res;
  };
  const cookie = () => [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  const hidden = (html, name) => {
    const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
    assert.ok(m, `no hidden ${name} in the page`);
    return m[1].replaceAll("&amp;", "&").replaceAll("&quot;", '"');
  };
  const post = async (path, fields) =>
    keep(
      await fetch(new URL(path, stack.baseUrl), {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie: cookie() },
        body: new URLSearchParams(fields),
      }),
    );
  const authorize = new URL("/oauth/authorize", stack.baseUrl);
  authorize.search = new URLSearchParams({
    client_id: stack.appId,
    redirect_uri: REDIRECT_URI,
    response_type: "code",
    scope: "openid email",
    state: "state-1",
    nonce: "nonce-1",
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  const page = keep(await fetch(authorize, { redirect: "manual" }));
  const html = await page.text();
  assert.equal(page.status, 200, html.slice(0, 300));
  const flow = hidden(html, "flow");
  const csrf = hidden(html, "csrf");
  const tenant = await post("/oauth/authorize/tenant", { flow, csrf, tenant: stack.tenantDomain });
  assert.equal(tenant.status, 200, (await tenant.text()).slice(0, 300));
  const login = await post("/oauth/authorize/login", { flow, csrf, email: stack.ownerEmail, password: stack.ownerPassword });
  assert.equal(login.status, 303, (await login.text()).slice(0, 300));
  const code = new URL(login.headers.get("location")).searchParams.get("code");
  assert.ok(code, "no code in the redirect");
  const res = await fetch(new URL("/oauth/token", stack.baseUrl), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
      client_id: stack.appId,
    }),
  });
  const tokens = await res.json();
  assert.equal(res.status, 200, JSON.stringify(tokens));
  return tokens;
}
