#!/usr/bin/env bash
# make dev: applies the D1 migrations locally, starts the development identity provider for
# operators and auditors (scripts/dev-idp.mjs) on 127.0.0.1:${IDP_PORT:-8788} and the worker with
# wrangler dev on 127.0.0.1:${PORT:-8787}, seeds the demo, prints how to open the console and
# writes .edgeplane/demo.json. Ctrl-C stops both servers.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8787}
IDP_PORT=${IDP_PORT:-8788}
BASE="http://127.0.0.1:$PORT"
# The console's operators sign in at the IdP, and the API's bearer tokens carry its issuer too.
ISSUER="http://127.0.0.1:$IDP_PORT"
CONSOLE_CLIENT_ID=edgeplane-console
if [[ "$PORT" == "$IDP_PORT" ]]; then
  echo "PORT and IDP_PORT must differ (both are $PORT)" >&2
  exit 2
fi
mkdir -p .edgeplane

# Local secrets: generated once, never committed (.dev.vars is git-ignored).
if [[ ! -f .dev.vars ]]; then
  {
    echo "EDGEPLANE_ENV=development"
    echo "CRON_SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  } > .dev.vars
  echo "==> wrote .dev.vars (local secrets)"
fi
# Replaces NAME's line in .dev.vars by NAME=VALUE, unless it already reads so. VALUE is written
# as given: quote it for dotenv when it holds spaces.
set_var() {
  if ! grep -qxF "$1=$2" .dev.vars; then
    sed -i "/^$1=/d" .dev.vars
    printf '%s=%s\n' "$1" "$2" >> .dev.vars
    echo "==> set $1 in .dev.vars"
  fi
}
# The development issuer of operator sign-in: the IdP signs its ID tokens with the key in
# .edgeplane/dev-issuer.env (which only dev-issuer.mjs and dev-idp.mjs read), and the public key
# set goes to .dev.vars (the worker trusts it only in development, for a loopback issuer). A
# checkout from before the IdP, or another IDP_PORT, has another issuer: new keys for this one.
if [[ "$(sed -n 's/^OPERATOR_ISSUER=//p' .edgeplane/dev-issuer.env 2>/dev/null)" != "$ISSUER" ]]; then
  node scripts/dev-issuer.mjs keygen --issuer "$ISSUER" > .edgeplane/dev-issuer.env.new
  mv .edgeplane/dev-issuer.env.new .edgeplane/dev-issuer.env
  chmod 600 .edgeplane/dev-issuer.env
  echo "==> new development operator issuer $ISSUER (.edgeplane/dev-issuer.env)"
fi
for name in OPERATOR_ISSUER OPERATOR_AUDIENCE OPERATOR_DEV_JWKS; do
  set_var "$name" "$(sed -n "s/^$name=//p" .edgeplane/dev-issuer.env)"
done
# The console: its origin, and its client at the IdP with a secret made once.
set_var PUBLIC_BASE_URL "$BASE"
set_var OPERATOR_CONSOLE_CLIENT_ID "$CONSOLE_CLIENT_ID"
set_var OPERATOR_CONSOLE_SCOPES "'openid email profile roles'"
if ! grep -q '^OPERATOR_CONSOLE_CLIENT_SECRET=.' .dev.vars; then
  set_var OPERATOR_CONSOLE_CLIENT_SECRET "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
fi
# The master key sealing token signing keys (NFR-SEC-004); added to an older .dev.vars too.
if ! grep -q '^MASTER_KEY=' .dev.vars; then
  echo "MASTER_KEY=$(head -c 32 /dev/urandom | base64)" >> .dev.vars
  echo "==> added MASTER_KEY to .dev.vars"
fi
client_secret=$(sed -n 's/^OPERATOR_CONSOLE_CLIENT_SECRET=//p' .dev.vars)
# The IdP's demo accounts share one password, made once and kept in .edgeplane/ (git-ignored).
[[ -s .edgeplane/idp-password ]] || head -c 18 /dev/urandom | base64 | tr '+/' '-_' > .edgeplane/idp-password
idp_password=$(cat .edgeplane/idp-password)

echo "==> applying D1 migrations (local)"
npx wrangler d1 migrations apply DB --local > .edgeplane/migrations.log 2>&1 || { cat .edgeplane/migrations.log; exit 1; }

idp_pid=
wrangler_pid=
stop_servers() {
  for p in $wrangler_pid $idp_pid; do kill "$p" 2>/dev/null || true; done
  for p in $wrangler_pid $idp_pid; do wait "$p" 2>/dev/null || true; done
  rm -f .edgeplane/wrangler.pid .edgeplane/idp.pid
}
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> starting the development IdP on $ISSUER"
# dev-idp.mjs exits when its stdin closes. Its stdin is a pipe whose only writer is this script
# (fd 3), so the IdP also goes when the script is killed before its trap can run; the servers
# started after it must not inherit fd 3 (3>&-). Its first stdout line says it is listening.
# --max-seconds: the longest timer Node keeps (about 24 days); make dev stops it before that.
rm -f .edgeplane/idp.stdin .edgeplane/idp.ready
mkfifo .edgeplane/idp.stdin
node scripts/dev-idp.mjs --env-file .edgeplane/dev-issuer.env --port "$IDP_PORT" \
  --redirect-uri "$BASE/console/auth/callback" --post-logout-redirect-uri "$BASE/console/signin" \
  --client-id "$CONSOLE_CLIENT_ID" --client-secret "$client_secret" --password "$idp_password" \
  --max-seconds 2147483 \
  < .edgeplane/idp.stdin > .edgeplane/idp.ready 2> .edgeplane/idp.log &
idp_pid=$!
exec 3> .edgeplane/idp.stdin
rm -f .edgeplane/idp.stdin
echo "$idp_pid" > .edgeplane/idp.pid
for _ in $(seq 1 60); do
  [[ -s .edgeplane/idp.ready ]] && break
  if ! kill -0 "$idp_pid" 2>/dev/null; then cat .edgeplane/idp.log >&2; exit 1; fi
  sleep 0.5
done
if ! grep -qxF "{\"issuer\":\"$ISSUER\"}" .edgeplane/idp.ready; then
  cat .edgeplane/idp.log >&2
  echo "the development IdP did not start on $ISSUER" >&2
  exit 1
fi

echo "==> starting wrangler dev on $BASE"
node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" --test-scheduled --show-interactive-dev-session=false \
  > .edgeplane/wrangler.log 2>&1 3>&- &
wrangler_pid=$!
echo "$wrangler_pid" > .edgeplane/wrangler.pid

for _ in $(seq 1 180); do
  if curl -fsS "$BASE/health" > /dev/null 2>&1; then break; fi
  if ! kill -0 "$wrangler_pid" 2>/dev/null; then cat .edgeplane/wrangler.log; exit 1; fi
  sleep 0.5
done
curl -fsS "$BASE/health" > /dev/null || { cat .edgeplane/wrangler.log; echo "wrangler dev did not answer" >&2; exit 1; }

echo "==> seeding the demo"
# API tokens of the IdP's demo accounts (same issuer, key, sub and email), so what the seeding
# does and what the console shows have the same actor.
token() { node scripts/dev-issuer.mjs token --role "$1" --sub "demo-$1" --ttl 86400 --email "$1@operators.example" --env-file .edgeplane/dev-issuer.env; }
operator_token=$(token operator)
auditor_token=$(token auditor)
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
  const [base, idp, idpPassword, health, provision, listing, operatorToken, auditorToken] = process.argv.slice(1);
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
    console_url: `${base}/console/`,
    idp_url: idp,
    operator_email: "operator@operators.example",
    auditor_email: "auditor@operators.example",
    idp_password: idpPassword,
  };
  require("fs").writeFileSync(".edgeplane/demo.json", JSON.stringify(demo, null, 2) + "\n");
' "$BASE" "$ISSUER" "$idp_password" "$health" "$provision" "$listing" "$operator_token" "$auditor_token"
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

# The seeding above is audited into the outbox; the scheduled job forwards it to the audit trail,
# so the console's flag history and the audit CSV show it now rather than at the next cron.
curl -sS -o /dev/null "$BASE/__scheduled?cron=*/5+*+*+*+*" || true

cat <<TXT

Open the console: $BASE/console/
  Operators and auditors sign in at the development IdP ($ISSUER):
    operator@operators.example  or  auditor@operators.example (reads the same pages, no forms)
    password: $idp_password
  Tenant owners and admins: sign in at $BASE/console/ with organization demo,
    email owner@demo.example, password $owner_password

The API (tokens, the demo key and ids are in .edgeplane/demo.json; logs in .edgeplane/):
  curl -s $BASE/v1/health                  # D1, KV, Durable Object and R2, each with its latency
  curl -s $BASE/openapi.json               # every route
  KEY=\$(node -p 'require("./.edgeplane/demo.json").app_key')
  curl -s -X POST -H "X-API-Key: \$KEY" -H 'Content-Type: application/json' $BASE/ofrep/v1/evaluate/flags \\
       -d '{"context":{"tenantId":"$tenant_id","targetingKey":"user-1","email":"ana@demo.example"}}'
  AUD=\$(node -p 'require("./.edgeplane/demo.json").auditor_token')
  curl -s -H "Authorization: Bearer \$AUD" "$BASE/v1/audit/export.csv?tenant=$tenant_id"   # the audit trail
More examples: README.md#api-at-a-glance
TXT

# Edgeplane as the OpenID provider of a managed app: the demo app is the client (code + PKCE
# S256), its registered redirect URI http://127.0.0.1:3000/callback, where nothing listens.
verifier=$(node -p 'require("crypto").randomBytes(32).toString("base64url")')
challenge=$(node -p 'require("crypto").createHash("sha256").update(process.argv[1]).digest("base64url")' "$verifier")
authorize_url="$BASE/oauth/authorize?client_id=$app_id&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fcallback&response_type=code&scope=openid%20email%20profile%20offline_access&state=demo-state&nonce=demo-nonce&code_challenge=$challenge&code_challenge_method=S256"
cat <<TXT

Sign in to the demo app through the universal login (as the tenant owner above): open
  $authorize_url
then, within 60 s, take the code from the address bar (http://127.0.0.1:3000/callback?code=...):
  curl -s -X POST -d grant_type=authorization_code -d client_id=$app_id -d code=CODE \\
       -d redirect_uri=http://127.0.0.1:3000/callback -d code_verifier=$verifier $BASE/oauth/token

Ctrl-C stops Edgeplane and the IdP.
TXT
# Until either server stops (Ctrl-C stops both; the trap stops the other).
wait -n "$wrangler_pid" "$idp_pid" || true
kill -0 "$wrangler_pid" 2>/dev/null || { echo "wrangler dev stopped (.edgeplane/wrangler.log)" >&2; exit 1; }
echo "the development IdP stopped (.edgeplane/idp.log)" >&2
exit 1
