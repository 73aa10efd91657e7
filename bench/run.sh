#!/usr/bin/env bash
# make bench: load on the built worker in workerd (Miniflare, no wrangler proxy hop) with wrk,
# printing requests/s, p50 and p99 per route, and the worker's wasm size raw and gzipped.
# Record the figures, the machine and the date in bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-10}

if ! command -v wrk > /dev/null; then
  echo "==> installing wrk (Debian package)"
  if [[ $(id -u) -eq 0 ]]; then apt-get install -y -qq wrk > /dev/null; else sudo apt-get install -y -qq wrk > /dev/null; fi
fi

state=$(mktemp -d)
out=$(mktemp)
coproc SERVER { exec node tests/harness/workerd.mjs --state "$state" --max-seconds 600 2> "$state/server.log"; }
server_pid=$SERVER_PID
cleanup() { kill "$server_pid" 2> /dev/null || true; wait "$server_pid" 2> /dev/null || true; rm -rf "$state" "$out"; }
trap cleanup EXIT
read -r -t 60 ready <&"${SERVER[0]}" || { cat "$state/server.log"; echo "server did not start" >&2; exit 1; }
base=$(node -e 'console.log(JSON.parse(process.argv[1]).url)' "$ready")

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(node --version); workerd $(npx workerd --version 2>/dev/null | awk '{print $2}')"
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
echo "load:    wrk, $CONNECTIONS connections, $DURATION per route, against workerd via Miniflare"
echo
threads=$(( CONNECTIONS < 2 ? CONNECTIONS : 2 ))
printf '%-14s %10s %10s %10s %10s %s\n' route "req/s" p50 p90 p99 errors
for route in /health /v1/health; do
  curl -fsS "$base$route" > /dev/null
  wrk -t"$threads" -c"$CONNECTIONS" -d"$DURATION" --latency "$base$route" > "$out"
  rps=$(awk '/^Requests\/sec/ {print $2}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p90=$(awk '$1 == "90%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  errors=$(awk '/Non-2xx|Socket errors/ {sub(/^ +/, ""); printf "%s; ", $0}' "$out")
  printf '%-14s %10s %10s %10s %10s %s\n' "$route" "$rps" "$p50" "$p90" "$p99" "${errors:-0}"
done
echo
wasm=$(ls worker/build/*.wasm 2> /dev/null | head -n 1)
if [[ -n "$wasm" ]]; then
  raw=$(stat -c %s "$wasm")
  gz=$(gzip -9 -c "$wasm" | wc -c)
  echo "worker wasm: $wasm $raw bytes raw, $gz bytes gzip -9"
fi

# The deployment bundle (shim + wasm) as wrangler would upload it.
dry=$(mktemp -d)
if node_modules/.bin/wrangler deploy --dry-run --outdir "$dry" > "$dry.log" 2>&1; then
  echo "deploy bundle: $(grep -o 'Total Upload: .*' "$dry.log")"
else
  cat "$dry.log" >&2
  echo "wrangler deploy --dry-run failed" >&2
  exit 1
fi
rm -rf "$dry" "$dry.log"
