#!/usr/bin/env bash
# Checks that the Spin component imports only interfaces released Spin (3.x, 4.x) provides:
# a component importing anything else would fail to start there.
set -euo pipefail
cd "$(dirname "$0")/.."
wasm=${1:?usage: check-spin-imports.sh component.wasm}
allow=spin/allowed-imports.txt
imports=$(wasm-tools component wit "$wasm" | sed -n 's/^ *import \([^;]*\);.*/\1/p' | sort -u)
if [[ -z "$imports" ]]; then
  echo "no imports found in $wasm (is it a component?)" >&2
  exit 1
fi
bad=0
while read -r imp; do
  ok=0
  while read -r pattern; do
    [[ -z "$pattern" || "$pattern" == \#* ]] && continue
    # shellcheck disable=SC2053 # the allowlist holds glob patterns
    if [[ "$imp" == $pattern ]]; then ok=1; break; fi
  done < "$allow"
  if [[ $ok -eq 0 ]]; then
    echo "not provided by released Spin: $imp" >&2
    bad=1
  fi
done <<<"$imports"
exports=$(wasm-tools component wit "$wasm" | sed -n 's/^ *export \([^;]*\);.*/\1/p')
if ! grep -q '^wasi:http/incoming-handler@0\.2\.' <<<"$exports"; then
  echo "the component does not export wasi:http/incoming-handler@0.2.x" >&2
  bad=1
fi
[[ $bad -eq 0 ]] && echo "spin component: $(wc -l <<<"$imports") imports, all provided by released Spin; exports wasi:http/incoming-handler"
exit $bad
