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
health=$(curl -sS "$BASE/v1/health")
node -e '
  const [base, health] = process.argv.slice(1);
  const demo = {
    base_url: base,
    health: JSON.parse(health),
    // Filled in as the capabilities land: operator and auditor tokens from the local development
    // issuer, a tenant with its owner, an app and its key.
    operator_token: null, auditor_token: null, tenant_id: null, tenant_domain: null,
    owner_email: null, owner_password: null, app_id: null, app_key: null,
  };
  require("fs").writeFileSync(".edgeplane/demo.json", JSON.stringify(demo, null, 2) + "\n");
' "$BASE" "$health"

cat <<TXT

Edgeplane is running at $BASE (logs: .edgeplane/wrangler.log; demo: .edgeplane/demo.json)

Try:
  curl -i $BASE/health
  curl -s $BASE/v1/health            # D1, KV, Durable Object and R2, each with its latency
  curl -s $BASE/openapi.json         # every route
  curl -i $BASE/v1/nope              # errors are application/problem+json
  curl -s "$BASE/__scheduled?cron=*/5+*+*+*+*"   # fire the cron trigger
  curl -s -X POST -H "Authorization: Bearer $cron_secret" $BASE/internal/scheduled

Ctrl-C stops the server.
TXT
wait "$pid"
