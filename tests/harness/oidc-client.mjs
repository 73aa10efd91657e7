// Signs in to a running Edgeplane with an unmodified OIDC client library (openid-client, npm),
// as a managed app would (FR-AUTH-001 OIDC): discovery, an authorization URL with PKCE S256 +
// state + nonce, the universal login page followed by plain HTTP (fetch the page, post its
// forms with the CSRF token and cookie, as a browser without JavaScript does), the code
// exchange with the library's ID token validation, userinfo, refresh, and the end-session URL.
//
// Usage: node oidc-client.mjs <base url> <client id> <client secret or -> <tenant domain>
//          <email> <password> <redirect uri>
// Prints one JSON object (see `out` below). Exits non-zero on any failure.
import * as client from "openid-client";

const [baseUrl, clientId, secretArg, tenant, email, password, redirectUri] = process.argv.slice(2);
if (!redirectUri) {
  console.error("usage: node oidc-client.mjs <base url> <client id> <secret|-> <tenant> <email> <password> <redirect uri>");
  process.exit(2);
}
const secret = secretArg === "-" ? undefined : secretArg;

// A public client authenticates with nothing but PKCE; a confidential one with its secret
// (client_secret_basic here; the contract suite covers client_secret_post).
const auth = secret ? client.ClientSecretBasic(secret) : client.None();
const insecure = { execute: [client.allowInsecureRequests] };
const config = await client.discovery(new URL(baseUrl), clientId, secret, auth, insecure);
// Verify the ID token's signature with the provider's JWKS, not only over TLS trust: this is
// where a library that cannot verify EdDSA fails.
client.enableNonRepudiationChecks(config);
const meta = config.serverMetadata();

// 1. The authorization URL, built by the library.
const codeVerifier = client.randomPKCECodeVerifier();
const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
const state = client.randomState();
const nonce = client.randomNonce();
const authUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: "openid email profile offline_access",
  code_challenge: codeChallenge,
  code_challenge_method: "S256",
  state,
  nonce,
});

// 2. The login page, by plain HTTP.
const cookies = new Map();
const keepCookies = (res) => {
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(";");
    const i = pair.indexOf("=");
    cookies.set(pair.slice(0, i), pair.slice(i + 1));
  }
};
const cookieHeader = () => [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
const hidden = (html, name) => {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!m) throw new Error(`no hidden ${name} in the page: ${html.slice(0, 400)}`);
  return m[1].replaceAll("&amp;", "&").replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&lt;", "<").replaceAll("&gt;", ">");
};
const post = async (path, fields) => {
  const res = await fetch(new URL(path, baseUrl), {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: cookieHeader() },
    body: new URLSearchParams(fields).toString(),
  });
  keepCookies(res);
  return res;
};

let res = await fetch(authUrl, { redirect: "manual" });
keepCookies(res);
let html = await res.text();
if (res.status !== 200) throw new Error(`authorize answered ${res.status}: ${html.slice(0, 400)}`);
const csp = res.headers.get("content-security-policy");
const flow = hidden(html, "flow");
const csrf = hidden(html, "csrf");
// Step 1: the organization (the URL did not name it).
res = await post("/oauth/authorize/tenant", { flow, csrf, tenant });
html = await res.text();
if (res.status !== 200 || !html.includes('name="password"')) {
  throw new Error(`tenant step answered ${res.status}: ${html.slice(0, 400)}`);
}
// Step 2: email and password; the answer sends the browser back to the app.
res = await post("/oauth/authorize/login", { flow, csrf, email, password });
if (res.status !== 303) throw new Error(`login step answered ${res.status}: ${(await res.text()).slice(0, 600)}`);
const callback = new URL(res.headers.get("location"));

// 3. The code exchange: the library checks state, the ID token (signature, iss, aud, nonce, exp).
const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: codeVerifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
const idHeader = JSON.parse(Buffer.from(tokens.id_token.split(".")[0], "base64url").toString());

// 4. userinfo, checked by the library against the ID token's sub.
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

// 5. Refresh: a rotated refresh token and a fresh, verified ID token.
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
const refreshedClaims = refreshed.claims();

// 6. A tampered ID token signature must be refused by the library (proves it verifies EdDSA),
//    while the same interception without tampering passes (so the tampering is what fails).
const intercepted = async (tamper, refreshToken) => {
  const cfg = await client.discovery(new URL(baseUrl), clientId, secret, auth, {
    ...insecure,
    [client.customFetch]: async (url, options) => {
      const r = await fetch(url, options);
      if (!String(url).endsWith("/oauth/token")) return r;
      const body = await r.json();
      if (tamper && body.id_token) {
        const [h, p, s] = body.id_token.split(".");
        const sig = Buffer.from(s, "base64url");
        sig[0] ^= 1;
        body.id_token = [h, p, sig.toString("base64url")].join(".");
      }
      return new Response(JSON.stringify(body), { status: r.status, headers: { "content-type": "application/json" } });
    },
  });
  client.enableNonRepudiationChecks(cfg);
  return client.refreshTokenGrant(cfg, refreshToken);
};
const control = await intercepted(false, refreshed.refresh_token);
let tamperRefused = null;
try {
  await intercepted(true, control.refresh_token);
  tamperRefused = false;
} catch (e) {
  const cause = e?.cause?.message ?? e?.cause?.code ?? "";
  tamperRefused = `${e?.code ?? ""} ${e?.message ?? e} ${cause}`.trim();
}

// 7. The end-session URL, built by the library.
const endSession = client.buildEndSessionUrl(config, {
  id_token_hint: refreshed.id_token,
  post_logout_redirect_uri: redirectUri,
  state: "bye",
});

console.log(
  JSON.stringify({
    issuer: meta.issuer,
    algs: meta.id_token_signing_alg_values_supported,
    csp,
    callback_has_code: callback.searchParams.has("code"),
    id_token_alg: idHeader.alg,
    id_token_kid: idHeader.kid,
    claims,
    scope: tokens.scope,
    userinfo,
    refreshed: {
      rotated: refreshed.refresh_token !== tokens.refresh_token,
      sid_kept: refreshedClaims.sid === claims.sid,
      sub: refreshedClaims.sub,
    },
    refreshed_access_token: control.access_token,
    tamper_refused: tamperRefused,
    end_session_url: endSession.href,
  }),
);
