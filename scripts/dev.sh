#!/usr/bin/env bash
# make dev: applies the D1 migrations locally, starts the worker with wrangler dev on
# 127.0.0.1:${PORT:-8787}, seeds the demo, prints what to try and writes .edgeplane/demo.json.
# Ctrl-C stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8787}
BASE="http://127.0.0.1:$PORT"
mkdir -p .edgeplane

# Local secrets: generated once, never committed (.dev.vars is git-ignored).
if [[ ! -f .dev.vars ]]; then
  {
    echo "EDGEPLANE_ENV=development"
    echo "CRON_SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  } > .dev.vars
  echo "==> wrote .dev.vars (local secrets)"
fi
# The local development issuer for operator sign-in: its public key set goes to .dev.vars (the
# worker reads it only in development, for a loopback issuer); its private key stays in
# .edgeplane/dev-issuer.env, which only scripts/dev-issuer.mjs reads.
if ! grep -q '^OPERATOR_ISSUER=' .dev.vars || [[ ! -f .edgeplane/dev-issuer.env ]]; then
  sed -i '/^OPERATOR_\(ISSUER\|AUDIENCE\|DEV_JWKS\)=/d' .dev.vars
  node scripts/dev-issuer.mjs keygen --issuer "http://127.0.0.1:$PORT/dev-issuer" > .edgeplane/dev-issuer.env
  grep -v '^OPERATOR_DEV_PRIVATE_JWK=' .edgeplane/dev-issuer.env >> .dev.vars
  echo "==> added the development operator issuer to .dev.vars"
fi
# The master key sealing token signing keys (NFR-SEC-004); added to an older .dev.vars too.
if ! grep -q '^MASTER_KEY=' .dev.vars; then
  echo "MASTER_KEY=$(head -c 32 /dev/urandom | base64)" >> .dev.vars
  echo "==> added MASTER_KEY to .dev.vars"
fi
cron_secret=$(sed -n 's/^CRON_SECRET=//p' .dev.vars)

echo "==> applying D1 migrations (local)"
npx wrangler d1 migrations apply DB --local > .edgeplane/migrations.log 2>&1 || { cat .edgeplane/migrations.log; exit 1; }

echo "==> starting wrangler dev on $BASE"
node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" --test-scheduled --show-interactive-dev-session=false \
  > .edgeplane/wrangler.log 2>&1 &
pid=$!
echo "$pid" > .edgeplane/wrangler.pid
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f .edgeplane/wrangler.pid' EXIT INT TERM

for _ in $(seq 1 180); do
  if curl -fsS "$BASE/health" > /dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat .edgeplane/wrangler.log; exit 1; fi
  sleep 0.5
done
curl -fsS "$BASE/health" > /dev/null || { cat .edgeplane/wrangler.log; echo "wrangler dev did not answer" >&2; exit 1; }

echo "==> seeding the demo"
token() { node scripts/dev-issuer.mjs token --role "$1" --sub "$2" --ttl 86400 --email "$2@operators.example" --env-file .edgeplane/dev-issuer.env; }
operator_token=$(token operator demo-operator)
auditor_token=$(token auditor demo-auditor)
# Idempotent: a second `make dev` finds the demo tenant instead of provisioning it again.
provision=$(curl -sS -X POST "$BASE/v1/tenants" -H "Authorization: Bearer $operator_token" \
  -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-tenant' \
  -d '{"name":"Demo Corp","domain":"demo","plan":"pro","owner_email":"owner@demo.example"}')
listing=$(curl -sS "$BASE/v1/tenants?q=demo&limit=10" -H "Authorization: Bearer $operator_token")
auth=(-H "Authorization: Bearer $operator_token" -H 'Content-Type: application/json')
app=$(curl -sS -X POST "$BASE/v1/apps" "${auth[@]}" -d '{"name":"Demo App","redirect_uris":["http://127.0.0.1:3000/callback"],"allowed_origins":["http://127.0.0.1:3000"]}')
apps=$(curl -sS "$BASE/v1/apps?limit=100" -H "Authorization: Bearer $operator_token")
app_id=$(node -e '
  const [created, list] = process.argv.slice(1).map((s) => JSON.parse(s));
  const app = created.id ? created : list.items.find((a) => a.name === "Demo App");
  if (!app) { console.error("cannot seed the demo app: " + JSON.stringify(created)); process.exit(1); }
  console.log(app.id);
' "$app" "$apps")
health=$(curl -sS "$BASE/v1/health")
node -e '
  const [base, health, provision, listing, operatorToken, auditorToken] = process.argv.slice(1);
  const created = JSON.parse(provision);
  const tenant = created.tenant ?? JSON.parse(listing).items.find((t) => t.domain === "demo");
  if (!tenant) { console.error("cannot seed the demo tenant: " + provision); process.exit(1); }
  const demo = {
    base_url: base,
    health: JSON.parse(health),
    operator_token: operatorToken,
    auditor_token: auditorToken,
    tenant_id: tenant.id,
    tenant_domain: tenant.domain,
    owner_email: "owner@demo.example",
    owner_invitation_link: created.invitation_link ?? null,
    // Set below, once the owner accepted the invitation.
    owner_password: null,
  };
  require("fs").writeFileSync(".edgeplane/demo.json", JSON.stringify(demo, null, 2) + "\n");
' "$BASE" "$health" "$provision" "$listing" "$operator_token" "$auditor_token"
tenant_id=$(node -e 'console.log(require("./.edgeplane/demo.json").tenant_id)')
curl -sS -o /dev/null -X POST "$BASE/v1/tenants/$tenant_id/apps/$app_id" -H "Authorization: Bearer $operator_token"
key=$(curl -sS -X POST "$BASE/v1/apps/$app_id/keys" "${auth[@]}" \
  -d '{"name":"demo","scopes":["flags:read","bill:write","bill:read","log:write","token:introspect"]}')
node -e '
  const [appId, key] = process.argv.slice(1);
  const k = JSON.parse(key);
  if (!k.secret) { console.error("cannot issue the demo key: " + key); process.exit(1); }
  const demo = require("./.edgeplane/demo.json");
  Object.assign(demo, { app_id: appId, app_key: k.secret, app_key_id: k.id });
  require("fs").writeFileSync(".edgeplane/demo.json", JSON.stringify(demo, null, 2) + "\n");
' "$app_id" "$key"
# Demo flags (idempotent: PUT replaces): a targeted boolean with a 20% rollout, and a string.
curl -sS -o /dev/null -X PUT "$BASE/v1/tenants/$tenant_id/flags/new-checkout" "${auth[@]}" -d '{
  "type":"boolean","value":false,"description":"The new checkout flow",
  "rules":[{"name":"staff","conditions":[{"attribute":"email","op":"ends_with","values":["@demo.example"]}],"value":true},
           {"name":"rollout","rollout":{"variants":[{"variant":"on","value":true,"weight":20},{"variant":"off","value":false,"weight":80}]}}]}'
curl -sS -o /dev/null -X PUT "$BASE/v1/tenants/$tenant_id/flags/banner" "${auth[@]}" \
  -d '{"type":"string","value":"Welcome to the demo","description":"Home page banner"}'

# The owner accepts the invitation with a generated password, kept in .edgeplane/ (git-ignored);
# a later `make dev` finds the invitation accepted and keeps the password.
[[ -f .edgeplane/owner-password ]] || head -c 18 /dev/urandom | base64 | tr '+/' '-_' > .edgeplane/owner-password
owner_password=$(cat .edgeplane/owner-password)
invitation_token=$(node -p 'const l = require("./.edgeplane/demo.json").owner_invitation_link; l ? new URL(l).searchParams.get("token") : ""')
if [[ -n "$invitation_token" ]]; then
  curl -sS -o /dev/null -X POST "$BASE/v1/invitations/accept" -H 'Content-Type: application/json' \
    -d "{\"token\":\"$invitation_token\",\"password\":\"$owner_password\"}" || true
fi
node -e '
  const demo = require("./.edgeplane/demo.json");
  demo.owner_password = process.argv[1];
  require("fs").writeFileSync(".edgeplane/demo.json", JSON.stringify(demo, null, 2) + "\n");
' "$owner_password"

cat <<TXT

Edgeplane is running at $BASE (logs: .edgeplane/wrangler.log; demo: .edgeplane/demo.json)

Tokens (24 h, development issuer) and the demo tenant are in .edgeplane/demo.json:
  OP=\$(node -p 'require("./.edgeplane/demo.json").operator_token')

Try:
  curl -i $BASE/health
  curl -s $BASE/v1/health            # D1, KV, Durable Object and R2, each with its latency
  curl -s $BASE/openapi.json         # every route
  curl -i $BASE/v1/nope              # errors are application/problem+json
  curl -s -H "Authorization: Bearer \$OP" "$BASE/v1/tenants?q=demo"        # operators list tenants
  curl -s -H "Authorization: Bearer \$OP" $BASE/v1/tenants/$tenant_id
  curl -s -X POST -H "Authorization: Bearer \$OP" -H 'Content-Type: application/json' \\
       -d '{"name":"Acme","domain":"acme","plan":"free","owner_email":"owner@acme.example"}' $BASE/v1/tenants
  curl -s -X POST -H "Authorization: Bearer \$OP" $BASE/v1/tenants/$tenant_id/suspend   # then .../activate
  curl -s -H "Authorization: Bearer \$OP" $BASE/v1/apps/$app_id/keys     # the demo app's keys (no secrets)
  KEY=\$(node -p 'require("./.edgeplane/demo.json").app_key')
  curl -s -H "Authorization: Bearer \$OP" $BASE/v1/tenants/$tenant_id/flags    # the demo flags
  curl -si -X POST -H "X-API-Key: \$KEY" -H 'Content-Type: application/json' \\
       -d '{"context":{"tenantId":"$tenant_id","targetingKey":"user-1","email":"ana@demo.example"}}' \\
       $BASE/ofrep/v1/evaluate/flags                                    # OpenFeature (OFREP) bulk, with ETag
  curl -s -X PUT -H "Authorization: Bearer \$OP" -H 'Content-Type: application/json' \\
       -d '{"type":"string","value":"Spring sale"}' $BASE/v1/tenants/$tenant_id/flags/banner   # then evaluate again
  # the owner signs in (password in .edgeplane/demo.json); an app key introspects the token
  AT=\$(curl -s -X POST -H 'Content-Type: application/json' -d '{"tenant":"demo","email":"owner@demo.example","password":"$owner_password"}' $BASE/v1/auth/login | node -p 'JSON.parse(require("fs").readFileSync(0)).access_token')
  curl -s -X POST -H "Authorization: Bearer \$KEY" -d "token=\$AT" $BASE/oauth/introspect
  curl -s $BASE/.well-known/jwks.json
  curl -s -X POST -H "Authorization: Bearer \$AT" $BASE/v1/auth/logout       # then introspect again: inactive
  AUD=\$(node -p 'require("./.edgeplane/demo.json").auditor_token')
  curl -s -X POST -H "X-API-Key: \$KEY" -H 'Content-Type: application/json' $BASE/v1/billing/events \\
       -d '{"tenant_id":"$tenant_id","id":"e1","type":"api.call","quantity":3,"timestamp":"2026-01-01T00:00:00Z"}'
  curl -s -H "X-API-Key: \$KEY" "$BASE/v1/billing/events?tenant=$tenant_id"            # billing export
  curl -s -H "Authorization: Bearer \$AUD" "$BASE/v1/audit/export.csv?tenant=$tenant_id"  # audit CSV
  curl -s -H "Authorization: Bearer \$AUD" "$BASE/v1/audit/verify?tenant=$tenant_id"      # hash chain
  curl -s "$BASE/__scheduled?cron=*/5+*+*+*+*"   # fire the cron trigger
  curl -s -X POST -H "Authorization: Bearer $cron_secret" $BASE/internal/scheduled
  # tenant administration by the owner (sign in again after the logout above)
  AT=\$(curl -s -X POST -H 'Content-Type: application/json' -d '{"tenant":"demo","email":"owner@demo.example","password":"$owner_password"}' $BASE/v1/auth/login | node -p 'JSON.parse(require("fs").readFileSync(0)).access_token')
  curl -s -X POST -H "Authorization: Bearer \$AT" -H 'Content-Type: application/json' \\
       -d '{"email":"ana@demo.example","role":"admin","expires_in_days":7}' $BASE/v1/tenant/invitations   # 409 the second time
  curl -s "$BASE/__dev/mail?to=ana@demo.example"                                  # the invitation mail (dev outbox)
  curl -s -H "Authorization: Bearer \$AT" "$BASE/v1/tenant/users?limit=20"          # also status=, role=, q= (email prefix), cursor=
  curl -s -H "Authorization: Bearer \$AT" $BASE/v1/tenant/invitations               # pending and expired; POST .../{id}/resend
  curl -s -H "Authorization: Bearer \$AT" $BASE/v1/me/export                        # personal data export (CON-COMP-001)
  # tenant SSO (owner): register redirect URI $BASE/v1/auth/sso/callback at your IdP, then
  curl -s -X PUT -H "Authorization: Bearer \$AT" -H 'Content-Type: application/json' -d '{"issuer_url":"https://idp.example.com","client_id":"ID","client_secret":"SECRET"}' $BASE/v1/tenant/sso   # then open $BASE/v1/auth/sso/start?tenant=demo
  curl -s -X POST -H "Authorization: Bearer \$AT" $BASE/v1/auth/webauthn/register/options   # passkeys (signed in): a browser answers with navigator.credentials.create()
TXT

# Sign in to the demo app through the universal login page (OIDC, code + PKCE S256). The demo
# app is the client; its registered redirect URI is http://127.0.0.1:3000/callback.
verifier=$(node -p 'require("crypto").randomBytes(32).toString("base64url")')
challenge=$(node -p 'require("crypto").createHash("sha256").update(process.argv[1]).digest("base64url")' "$verifier")
authorize_url="$BASE/oauth/authorize?client_id=$app_id&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fcallback&response_type=code&scope=openid%20email%20profile%20offline_access&state=demo-state&nonce=demo-nonce&code_challenge=$challenge&code_challenge_method=S256"
cat <<TXT
OpenID Connect (discovery: $BASE/.well-known/openid-configuration). Open in a browser:
  $authorize_url
  organization: demo, email: owner@demo.example, password: $owner_password
The browser lands on http://127.0.0.1:3000/callback?code=...&state=demo-state (nothing listens
there: copy the code from the address bar within 60 s), then:
  curl -s -X POST -d grant_type=authorization_code -d client_id=$app_id -d code=CODE \\
       -d redirect_uri=http://127.0.0.1:3000/callback -d code_verifier=$verifier $BASE/oauth/token

Ctrl-C stops the server.
TXT
wait "$pid"
