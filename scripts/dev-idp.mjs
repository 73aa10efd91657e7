#!/usr/bin/env node
// A local OpenID provider for operators and auditors (FR-SYS-004), with a real sign-in page: what
// the web consoles' browser tests (tests/browser) sign in through, and what a developer can point
// a local console at. It issues ID tokens signed with the development issuer's Ed25519 key, so
// the keys it publishes are exactly the OPERATOR_DEV_JWKS that Edgeplane already trusts in
// development. Node 20+, npm `oidc-provider`.
//
//   node scripts/dev-issuer.mjs keygen --issuer http://127.0.0.1:PORT > idp.env
//   node scripts/dev-idp.mjs --env-file idp.env --port PORT --redirect-uri URL [--redirect-uri URL]...
//        [--post-logout-redirect-uri URL]... [--client-id edgeplane-console]
//        [--client-secret edgeplane-console-dev-secret] [--password edgeplane-dev] [--max-seconds 3600]
//
// The issuer is the env file's OPERATOR_ISSUER, which must be http://127.0.0.1:PORT for --port.
// One confidential client (client_secret_basic or client_secret_post, authorization code flow,
// PKCE S256 required, scopes `openid email profile roles`); consent is implied for it. ID tokens
// are EdDSA and carry `email` and `roles` themselves, besides sub, aud (the client id) and nonce.
//
// Demo accounts, all with the --password (default edgeplane-dev):
//   operator@operators.example   sub demo-operator   roles ["operator"]
//   auditor@operators.example    sub demo-auditor    roles ["auditor"]
//   nobody@operators.example     sub demo-nobody     roles []
//
// Listens on 127.0.0.1 only and prints one line on stdout once it accepts connections:
//   {"issuer":"http://127.0.0.1:PORT"}
// It exits on stdin EOF, SIGTERM/SIGINT, or after --max-seconds. Logs go to stderr.

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import Provider from "oidc-provider";

const USAGE =
  "usage: dev-idp.mjs --env-file FILE --port N --redirect-uri URL [--redirect-uri URL]... " +
  "[--post-logout-redirect-uri URL]... [--client-id ID] [--client-secret S] [--password P] [--max-seconds N]";

function die(msg) {
  process.stderr.write(`dev-idp: ${msg}\n`);
  process.exit(2);
}

const REPEATABLE = new Set(["redirect-uri", "post-logout-redirect-uri"]);
const KNOWN = new Set([...REPEATABLE, "env-file", "port", "client-id", "client-secret", "password", "max-seconds"]);

function parseArgs(argv) {
  const opts = { "redirect-uri": [], "post-logout-redirect-uri": [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") {
      process.stderr.write(`${USAGE}\n`);
      process.exit(0);
    }
    const name = arg.startsWith("--") ? arg.slice(2) : undefined;
    if (!name || !KNOWN.has(name)) die(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
    const value = argv[++i];
    if (value === undefined) die(`${arg} needs a value`);
    if (REPEATABLE.has(name)) opts[name].push(value);
    else opts[name] = value;
  }
  return opts;
}

// The same reader as dev-issuer.mjs: KEY=value lines, optional quotes, # comments.
function readEnvFile(path) {
  const vars = {};
  for (const line of readFileSync(path, "utf8").split(/\r?\n/)) {
    const m = line.match(/^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/);
    if (!m) continue;
    let value = m[2];
    if (/^'.*'$/.test(value) || /^".*"$/.test(value)) value = value.slice(1, -1);
    vars[m[1]] = value;
  }
  return vars;
}

// RFC 7638 thumbprint of an OKP key, as dev-issuer.mjs computes its kid.
function thumbprint(jwk) {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
  return createHash("sha256").update(canonical).digest("base64url");
}

function absoluteHttpUrl(value, flag) {
  try {
    const url = new URL(value);
    if (url.protocol === "http:" || url.protocol === "https:") return url.href;
  } catch {
    // reported below
  }
  die(`${flag} ${JSON.stringify(value)} is not an absolute http(s) URL`);
}

const opts = parseArgs(process.argv.slice(2));
if (!opts["env-file"] || !opts.port || opts["redirect-uri"].length === 0) die(USAGE);
const port = Number(opts.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) die("--port expects 1..65535");
const maxSeconds = Number(opts["max-seconds"] ?? 3600);
if (!Number.isFinite(maxSeconds) || maxSeconds <= 0) die("--max-seconds expects a positive number");
const clientId = opts["client-id"] ?? "edgeplane-console";
const clientSecret = opts["client-secret"] ?? "edgeplane-console-dev-secret";
const password = opts.password ?? "edgeplane-dev";
const redirectUris = opts["redirect-uri"].map((u) => absoluteHttpUrl(u, "--redirect-uri"));
const postLogoutRedirectUris = opts["post-logout-redirect-uri"].map((u) =>
  absoluteHttpUrl(u, "--post-logout-redirect-uri"),
);

let env;
try {
  env = readEnvFile(opts["env-file"]);
} catch (e) {
  die(`cannot read --env-file: ${e.message}`);
}
const issuer = `http://127.0.0.1:${port}`;
if (env.OPERATOR_ISSUER !== issuer) {
  die(
    `OPERATOR_ISSUER in ${opts["env-file"]} is ${JSON.stringify(env.OPERATOR_ISSUER ?? null)}, ` +
      `but this provider's issuer is ${issuer}: run \`node scripts/dev-issuer.mjs keygen --issuer ${issuer}\``,
  );
}
let signingKey;
try {
  const priv = JSON.parse(env.OPERATOR_DEV_PRIVATE_JWK ?? "");
  if (priv.kty !== "OKP" || priv.crv !== "Ed25519" || !priv.x || !priv.d) throw new Error("not an Ed25519 private key");
  const { kid, ...key } = priv;
  // The kid dev-issuer.mjs puts in its tokens and in OPERATOR_DEV_JWKS.
  signingKey = { ...key, kid: kid ?? thumbprint(key), alg: "EdDSA", use: "sig" };
} catch (e) {
  die(`OPERATOR_DEV_PRIVATE_JWK in ${opts["env-file"]} is not an Ed25519 private JWK (${e.message})`);
}

/** The fixed demo accounts, by email; the sub is the account id the provider keeps. */
const ACCOUNTS = [
  { email: "operator@operators.example", sub: "demo-operator", name: "Demo Operator", roles: ["operator"] },
  { email: "auditor@operators.example", sub: "demo-auditor", name: "Demo Auditor", roles: ["auditor"] },
  { email: "nobody@operators.example", sub: "demo-nobody", name: "Demo Nobody", roles: [] },
];
const bySub = new Map(ACCOUNTS.map((a) => [a.sub, a]));
const byEmail = new Map(ACCOUNTS.map((a) => [a.email, a]));

function passwordMatches(given) {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(password).digest();
  return timingSafeEqual(a, b);
}

// Pages ------------------------------------------------------------------------------------

const STYLESHEET_PATH = "/dev-idp.css";
const STYLESHEET = `body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:24rem;padding:0 1rem;color:#111}
h1{font-size:1.4rem}label{display:block;margin-top:1rem;font-weight:600}
input{display:block;width:100%;box-sizing:border-box;padding:.5rem;margin-top:.25rem;font-size:1rem}
button{margin-top:1.25rem;padding:.5rem 1rem;font-size:1rem}
.error{color:#8a1010;border:1px solid #8a1010;padding:.5rem}pre{white-space:pre-wrap}
.note{color:#444;font-size:.9rem}`;

const escapeHtml = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// Forms post to this origin; after a sign-in the provider redirects to the client, which the
// browser checks against form-action too.
const formActions = ["'self'", ...new Set([...redirectUris, ...postLogoutRedirectUris].map((u) => new URL(u).origin))];
const CSP =
  `default-src 'none'; style-src 'self'; img-src 'self'; form-action ${formActions.join(" ")}; ` +
  "frame-ancestors 'none'; base-uri 'none'";

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Edgeplane development IdP</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

function loginPage(uid, { email = "", error } = {}) {
  const alert = error ? `<p class="error" role="alert" id="signin-error">${escapeHtml(error)}</p>\n` : "";
  return page(
    "Sign in",
    `<h1>Sign in to the Edgeplane development IdP</h1>
${alert}<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required value="${escapeHtml(email)}"${
      error ? ' aria-describedby="signin-error"' : ""
    }>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${
      error ? ' aria-describedby="signin-error"' : ""
    }>
<button type="submit">Sign in</button>
</form>
<p class="note">Development accounts only: ${ACCOUNTS.map((a) => escapeHtml(a.email)).join(", ")}.</p>`,
  );
}

function send(res, status, contentType, body, headers = {}) {
  res.writeHead(status, {
    "content-type": contentType,
    "cache-control": "no-store",
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    ...headers,
  });
  res.end(body);
}

const sendHtml = (res, status, html) => send(res, status, "text/html; charset=utf-8", html);

// Interactions ------------------------------------------------------------------------------

const MAX_FORM_BYTES = 16 * 1024;

function readForm(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_FORM_BYTES) {
        reject(Object.assign(new Error("form too large"), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(new URLSearchParams(Buffer.concat(chunks).toString("utf8"))));
    req.on("error", reject);
  });
}

/** Consent is implied for the one first-party client: grant whatever the prompt found missing. */
async function grantConsent(provider, details) {
  const { prompt, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(" "));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(" "));
  }
  const grantId = await grant.save();
  return details.grantId ? {} : { grantId };
}

async function handleInteraction(provider, req, res, url) {
  const m = url.pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/);
  if (!m) return sendHtml(res, 404, page("Not found", "<h1>Not found</h1>"));
  const [, uid, login] = m;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return sendHtml(res, 400, page("Sign-in expired", "<h1>This sign-in has expired</h1>"));

  if (!login && req.method === "GET") {
    if (details.prompt.name === "consent") {
      const consent = await grantConsent(provider, details);
      return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
    }
    return sendHtml(res, 200, loginPage(uid, { email: details.params.login_hint ?? "" }));
  }
  if (login && req.method === "POST") {
    if (details.prompt.name !== "login") return sendHtml(res, 400, page("Sign-in expired", "<h1>This sign-in has expired</h1>"));
    const form = await readForm(req);
    const email = (form.get("email") ?? "").trim().toLowerCase();
    const account = byEmail.get(email);
    if (!account || !passwordMatches(form.get("password") ?? "")) {
      process.stderr.write(`dev-idp: refused sign-in for ${JSON.stringify(email)}\n`);
      return sendHtml(res, 401, loginPage(uid, { email, error: "Wrong email or password." }));
    }
    process.stderr.write(`dev-idp: signed in ${account.email} (${account.sub})\n`);
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: account.sub } },
      { mergeWithLastSubmission: false },
    );
  }
  res.setHeader("allow", login ? "POST" : "GET");
  return sendHtml(res, 405, page("Method not allowed", "<h1>Method not allowed</h1>"));
}

// Provider ----------------------------------------------------------------------------------

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      post_logout_redirect_uris: postLogoutRedirectUris,
      grant_types: ["authorization_code"],
      response_types: ["code"],
      // oidc-provider 8 accepts client_secret_post as well for a client registered with either.
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "EdDSA",
    },
  ],
  jwks: { keys: [signingKey] },
  clientAuthMethods: ["client_secret_basic", "client_secret_post"],
  enabledJWA: { idTokenSigningAlgValues: ["EdDSA"] },
  scopes: ["openid", "email", "profile", "roles"],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name"],
    roles: ["roles"],
  },
  // email and roles in the ID token itself: the console reads them from there, not at userinfo.
  conformIdTokenClaims: false,
  pkce: { required: () => true, methods: ["S256"] },
  responseTypes: ["code"],
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.set("content-security-policy", CSP);
        ctx.body = page(
          "Sign out",
          `<h1>Sign out of the development IdP?</h1>
${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button>
<button type="submit" form="op.logoutForm">Stay signed in</button>`,
        );
      },
      async postLogoutSuccessSource(ctx) {
        ctx.set("content-security-policy", CSP);
        ctx.body = page("Signed out", "<h1>Signed out of the development IdP</h1>");
      },
    },
  },
  async renderError(ctx, out) {
    ctx.type = "html";
    ctx.set("content-security-policy", CSP);
    ctx.body = page(
      "Error",
      `<h1>Sign-in error</h1>\n${Object.entries(out)
        .map(([k, v]) => `<pre><strong>${escapeHtml(k)}</strong>: ${escapeHtml(v)}</pre>`)
        .join("\n")}`,
    );
  },
  // Over plain http SameSite=None cookies are dropped by browsers; and Edgeplane runs on the same
  // host (cookies ignore the port), so these names must not collide with the console's.
  cookies: {
    keys: [randomBytes(32).toString("base64url")],
    names: { session: "dev_idp_session", interaction: "dev_idp_interaction", resume: "dev_idp_resume" },
    long: { httpOnly: true, sameSite: "lax" },
    short: { httpOnly: true, sameSite: "lax" },
  },
  ttl: { AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const account = bySub.get(sub);
    if (!account) return undefined;
    return {
      accountId: account.sub,
      async claims() {
        return {
          sub: account.sub,
          email: account.email,
          email_verified: true,
          name: account.name,
          roles: [...account.roles],
        };
      },
    };
  },
});
provider.on("server_error", (ctx, err) => process.stderr.write(`dev-idp: server error: ${err.stack ?? err}\n`));

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    if (url.pathname === STYLESHEET_PATH && req.method === "GET") {
      return send(res, 200, "text/css; charset=utf-8", STYLESHEET, { "cache-control": "max-age=3600" });
    }
    if (url.pathname.startsWith("/interaction/")) return await handleInteraction(provider, req, res, url);
    return callback(req, res);
  } catch (e) {
    const status = e.status ?? e.statusCode ?? 500;
    process.stderr.write(`dev-idp: ${req.method} ${url.pathname}: ${e.stack ?? e}\n`);
    if (res.headersSent) return res.end();
    const title = status === 400 ? "This sign-in has expired or is unknown" : "Something went wrong";
    return sendHtml(res, status >= 400 && status < 600 ? status : 500, page("Error", `<h1>${title}</h1>`));
  }
});

function stop(why) {
  process.stderr.write(`dev-idp: stopping (${why})\n`);
  server.close();
  process.exit(0);
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
process.stdin.on("end", () => stop("stdin closed"));
process.stdin.on("error", () => stop("stdin error"));
process.stdin.resume();
setTimeout(() => stop(`--max-seconds ${maxSeconds} elapsed`), Math.min(maxSeconds * 1000, 2 ** 31 - 1)).unref();

server.on("error", (e) => die(`cannot listen on 127.0.0.1:${port}: ${e.message}`));
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
