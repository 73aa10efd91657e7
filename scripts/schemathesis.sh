#!/usr/bin/env bash
# Holds /openapi.json to the server: schemathesis generates requests from the document for every
# operation and runs all of its checks (status codes, content types, response schemas, headers,
# negative data refused, ...) against the release worker in workerd. Each operation is called
# with the credentials its security scheme names (schemathesis.toml): an operator's token, a
# tenant owner's access token, an API key with every scope.
# Exits non-zero on any failure.
#
#   scripts/schemathesis.sh [extra schemathesis options]
#   SCHEMATHESIS_MAX_EXAMPLES=N  examples per operation (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"

dir=$(mktemp -d "${TMPDIR:-/tmp}/edgeplane-schemathesis-XXXXXX")
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then
    exec 3>&- || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

# A development operator issuer of its own (loopback issuer, development only).
node scripts/dev-issuer.mjs keygen >"$dir/issuer.env"
vars=()
while IFS= read -r line; do
  name=${line%%=*}
  value=${line#*=}
  value=${value//\'/}
  [[ -z "$name" || "$name" == OPERATOR_DEV_PRIVATE_JWK ]] && continue
  vars+=(--var "$name=$value")
done <"$dir/issuer.env"
master_key=$(node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("base64"))')
pepper=$(node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("hex"))')

# The harness runs until its stdin closes: hold it open on a FIFO until cleanup.
mkfifo "$dir/stdin"
exec 3<>"$dir/stdin"
node tests/harness/workerd.mjs --state "$dir/state" --max-seconds 1200 "${vars[@]}" \
  --var "MASTER_KEY=$master_key" --var "API_KEY_PEPPER=$pepper" \
  <&3 >"$dir/ready" 2>"$dir/workerd.log" &
pid=$!
for _ in $(seq 1 600); do
  [[ -s "$dir/ready" ]] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "schemathesis: the worker did not start:" >&2
    tail -n 40 "$dir/workerd.log" >&2
    exit 1
  fi
  sleep 0.1
done
url=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).url' "$dir/ready")
OPERATOR_TOKEN=$(node scripts/dev-issuer.mjs token --role operator --sub schemathesis --ttl 3600 \
  --env-file "$dir/issuer.env")
export OPERATOR_TOKEN
callers=$(node scripts/schemathesis-callers.mjs "$url" "$OPERATOR_TOKEN")
USER_TOKEN=$(sed -n 's/^USER_TOKEN=//p' <<<"$callers")
API_KEY=$(sed -n 's/^API_KEY=//p' <<<"$callers")
export USER_TOKEN API_KEY

st run "$url/openapi.json" \
  --url "$url" \
  --checks all \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-20}" \
  --workers 1 \
  --seed 1 \
  --no-color \
  "$@"
