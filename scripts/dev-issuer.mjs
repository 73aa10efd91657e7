#!/usr/bin/env node
// A local development issuer for operator sign-in (FR-SYS-004): an Ed25519 key pair and the
// EdDSA JWTs it signs, for `make dev` and the tests. Node 20+, no dependencies.
//
//   node scripts/dev-issuer.mjs keygen [--issuer URL] [--audience AUD]
//       prints .dev.vars lines: OPERATOR_ISSUER, OPERATOR_AUDIENCE, OPERATOR_DEV_JWKS (the public
//       key set, which the worker reads) and OPERATOR_DEV_PRIVATE_JWK (read only by this script).
//   node scripts/dev-issuer.mjs token --role operator|auditor --sub NAME
//       [--ttl 3600] [--email ADDR] [--env-file .dev.vars] [--now UNIX_SECONDS]
//       prints a signed token (iss, aud, sub, roles, email, iat, exp; kid in the header).
//
// Edgeplane uses OPERATOR_DEV_JWKS only when EDGEPLANE_ENV=development and OPERATOR_ISSUER is an
// http:// loopback URL, so these keys can never sign anyone into a deployment.

import { createHash, createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";

const b64url = (buf) => Buffer.from(buf).toString("base64url");

function die(msg) {
  process.stderr.write(`dev-issuer: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) die(`unexpected argument ${arg}`);
    const value = argv[i + 1];
    if (value === undefined || value.startsWith("--")) die(`${arg} needs a value`);
    opts[arg.slice(2)] = value;
    i++;
  }
  return opts;
}

// Reads KEY=value lines (dotenv style: optional single or double quotes, # comments).
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

// RFC 7638 thumbprint of an OKP key: the kid.
function thumbprint(jwk) {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
  return b64url(createHash("sha256").update(canonical).digest());
}

function keygen(opts) {
  const issuer = opts.issuer ?? `http://127.0.0.1:${process.env.PORT || 8787}/dev-issuer`;
  const audience = opts.audience ?? "edgeplane";
  const { privateKey } = generateKeyPairSync("ed25519");
  const priv = privateKey.export({ format: "jwk" });
  const kid = thumbprint(priv);
  const pub = { kty: "OKP", crv: "Ed25519", x: priv.x, kid, alg: "EdDSA", use: "sig" };
  const lines = [
    `OPERATOR_ISSUER=${issuer}`,
    `OPERATOR_AUDIENCE=${audience}`,
    `OPERATOR_DEV_JWKS='${JSON.stringify({ keys: [pub] })}'`,
    `OPERATOR_DEV_PRIVATE_JWK='${JSON.stringify({ ...priv, kid })}'`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

function token(opts) {
  const role = opts.role;
  if (role !== "operator" && role !== "auditor") die("--role must be operator or auditor");
  const sub = opts.sub;
  if (!sub) die("--sub NAME is required");
  const ttl = Number(opts.ttl ?? 3600);
  if (!Number.isInteger(ttl) || ttl <= 0) die("--ttl must be a positive number of seconds");
  const envFile = opts["env-file"] ?? ".dev.vars";
  const env = existsSync(envFile) ? { ...process.env, ...readEnvFile(envFile) } : process.env;
  for (const name of ["OPERATOR_ISSUER", "OPERATOR_AUDIENCE", "OPERATOR_DEV_PRIVATE_JWK"]) {
    if (!env[name]) die(`${name} is not set (run keygen and append its output to ${envFile})`);
  }
  let jwk;
  try {
    jwk = JSON.parse(env.OPERATOR_DEV_PRIVATE_JWK);
  } catch {
    die("OPERATOR_DEV_PRIVATE_JWK is not JSON");
  }
  const { kid, ...keyJwk } = jwk;
  const key = createPrivateKey({ key: keyJwk, format: "jwk" });
  const now = opts.now !== undefined ? Number(opts.now) : Math.floor(Date.now() / 1000);
  const header = { alg: "EdDSA", typ: "JWT", kid: kid ?? thumbprint(keyJwk) };
  const claims = {
    iss: env.OPERATOR_ISSUER,
    aud: env.OPERATOR_AUDIENCE,
    sub,
    roles: [role],
    email: opts.email ?? `${sub}@example.com`,
    iat: now,
    exp: now + ttl,
  };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = sign(null, Buffer.from(input), key);
  process.stdout.write(`${input}.${b64url(signature)}\n`);
}

const [command, ...rest] = process.argv.slice(2);
const opts = parseArgs(rest);
if (command === "keygen") keygen(opts);
else if (command === "token") token(opts);
else die("usage: dev-issuer.mjs keygen | token --role operator|auditor --sub NAME [--ttl 3600] [--env-file .dev.vars]");
