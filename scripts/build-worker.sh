#!/usr/bin/env bash
# Builds the Cloudflare Worker (crate edgeplane-worker) in release into worker/build/
# (index.js + index_bg.wasm, the `main` of wrangler.toml) with worker-build.
#
# worker-build would download wasm-bindgen, wasm-opt and esbuild from GitHub; it is given local
# ones instead: wasm-bindgen from PATH (`cargo install wasm-bindgen-cli --version <the version
# pinned in worker/Cargo.toml>`), wasm-opt (npm binaryen) and esbuild from node_modules (`npm ci`).
# Quiet unless it fails; ends by printing the wasm size, raw and gzipped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { echo "build-worker: $*" >&2; exit 1; }

command -v worker-build >/dev/null || die "worker-build not found (cargo install worker-build --version 0.8.7 --locked)"
bindgen="$(command -v wasm-bindgen)" || die "wasm-bindgen not found (cargo install wasm-bindgen-cli --version 0.2.130)"
want="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' worker/Cargo.toml)"
have="$("$bindgen" --version | awk '{print $2}')"
[ "$want" = "$have" ] || die "wasm-bindgen CLI is $have but worker/Cargo.toml pins $want"
[ -x node_modules/.bin/wasm-opt ] && [ -x node_modules/.bin/esbuild ] || die "node_modules missing: run npm ci"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
started=$(date +%s)
if ! (
  cd worker &&
    WASM_BINDGEN_BIN="$bindgen" \
      WASM_OPT_BIN="$root/node_modules/.bin/wasm-opt" \
      ESBUILD_BIN="$root/node_modules/.bin/esbuild" \
      worker-build --release
) >"$log" 2>&1; then
  cat "$log" >&2
  die "worker-build failed"
fi

wasm=worker/build/index_bg.wasm
[ -f "$wasm" ] && [ -f worker/build/index.js ] || { cat "$log" >&2; die "no $wasm after the build"; }
raw=$(wc -c <"$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "worker/build: wasm ${raw} bytes ($((raw / 1024)) KiB), gzip ${gz} bytes ($((gz / 1024)) KiB), built in $(($(date +%s) - started)) s"
