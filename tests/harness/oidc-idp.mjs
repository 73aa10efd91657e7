// A real OpenID Connect provider (npm `oidc-provider`) for the tenant SSO contract tests
// (tests/api/sso.rs, FR-AUTH-003). Listens on 127.0.0.1 on a random port and prints one ready
// line, `{"issuer":"http://127.0.0.1:PORT"}`; stop it by its PID (or by closing stdin).
//
//   node tests/harness/oidc-idp.mjs --redirect-uri <edgeplane>/v1/auth/sso/callback [--redirect-uri ...]
//        [--id-token-ttl SECS] [--clock-skew-secs N] [--amr METHOD,METHOD]
//
// Clients (client_secret_basic, code flow, PKCE required): `edgeplane` / `edgeplane-secret` and
// `other-client` / `other-secret`, both with those redirect URIs. Sign-in needs no form: the
// interaction logs in the account named by the authorization request's `login_hint` (an email;
// the default is sso-user@example.test) and consent is implied for these clients. Accounts'
// email is their id and verified, except ids starting with `unverified`. `--clock-skew-secs`
// shifts this provider's clock (a provider whose clock is behind issues tokens already expired
// for Edgeplane). `--amr` names the authentication methods every sign-in claims (the ID token's
// `amr`, RFC 8176), e.g. `pwd,mfa` for a provider that did its own MFA; without it, none.

import { generateKeyPairSync } from "node:crypto";
import http from "node:http";
import Provider from "oidc-provider";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const redirectUris = args.flatMap((a, i) => (a === "--redirect-uri" && i + 1 < args.length ? [args[i + 1]] : []));
if (redirectUris.length === 0) {
  console.error("usage: oidc-idp.mjs --redirect-uri URL [--id-token-ttl SECS] [--clock-skew-secs N] [--amr M,M]");
  process.exit(2);
}
const idTokenTtl = Number(opt("--id-token-ttl", "3600"));
const skew = Number(opt("--clock-skew-secs", "0"));
const amr = opt("--amr", "").split(",").filter(Boolean);
if (skew) {
  const realNow = Date.now;
  Date.now = () => realNow() + skew * 1000;
}

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: "idp-key-1", use: "sig", alg: "RS256" };

let provider;
const server = http.createServer(async (req, res) => {
  try {
    if (req.url.startsWith("/interaction/")) {
      const details = await provider.interactionDetails(req, res);
      const accountId = details.params.login_hint || "sso-user@example.test";
      const result =
        details.prompt.name === "login"
          ? { login: { accountId, ...(amr.length ? { amr } : {}) } }
          : { consent: {} };
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
      return;
    }
    provider.callback()(req, res);
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e));
  }
});

server.listen(0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const client = (client_id, client_secret) => ({
    client_id,
    client_secret,
    redirect_uris: redirectUris,
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  });
  provider = new Provider(issuer, {
    clients: [client("edgeplane", "edgeplane-secret"), client("other-client", "other-secret")],
    jwks: { keys: [jwk] },
    cookies: { keys: ["oidc-idp-test-cookie-key"] },
    // `amr` goes with `openid` (the provider has one only with `--amr`).
    claims: { openid: ["sub", "amr"], email: ["email", "email_verified"] },
    // Email claims in the ID token itself, not only at userinfo.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    ttl: { IdToken: idTokenTtl, AuthorizationCode: 600, Interaction: 600, Session: 600, Grant: 600 },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: id, email_verified: !id.startsWith("unverified") };
        },
      };
    },
    // Consent is implied for the test clients: every OIDC scope asked is granted.
    async loadExistingGrant(ctx) {
      const grantId =
        ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const found = await ctx.oidc.provider.Grant.find(grantId);
        if (found) return found;
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope("openid email");
      await grant.save();
      ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId, grant.jti);
      return grant;
    },
  });
  console.log(JSON.stringify({ issuer }));
});

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
process.on("SIGTERM", () => process.exit(0));
