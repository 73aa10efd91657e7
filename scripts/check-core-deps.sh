#!/usr/bin/env bash
# Fails if edgeplane-core depends, on any target, on a runtime crate: core must stay the same
# code on Workers, Spin and native.
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden='^(worker|worker-sys|worker-macros|spin-sdk|spin-executor|wasm-bindgen|wasm-bindgen-futures|js-sys|web-sys|wasmtime|wasi|wit-bindgen) '
status=0
for target in wasm32-unknown-unknown wasm32-wasip2 "$(rustc -vV | sed -n 's/^host: //p')"; do
  found=$(cargo tree -p edgeplane-core -e normal,build --target "$target" --prefix none 2>/dev/null | sort -u | grep -E "$forbidden" || true)
  if [[ -n "$found" ]]; then
    echo "edgeplane-core depends on runtime crates for $target:" >&2
    echo "$found" >&2
    status=1
  fi
done
[[ $status -eq 0 ]] && echo "core: no runtime crate in its dependency tree (wasm32-unknown-unknown, wasm32-wasip2, host)"
exit $status
