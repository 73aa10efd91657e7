#!/usr/bin/env bash
# Builds a Rust Cloudflare Worker in release with worker-build into <crate dir>/build/
# (index.js + index_bg.wasm, the `main` of its wrangler.toml):
#
#   scripts/build-worker.sh                       Edgeplane's worker (crate dir `worker`)
#   scripts/build-worker.sh examples/edge-app     another Worker crate of the repository
#
# The crate's own Cargo workspace decides the target directory unless CARGO_TARGET_DIR says.
#
# worker-build would download wasm-bindgen, wasm-opt and esbuild from GitHub; it is given local
# ones instead: wasm-bindgen from PATH (`cargo install wasm-bindgen-cli --version <the version
# pinned in the crate's Cargo.toml>`), wasm-opt (npm binaryen) and esbuild from node_modules
# (`npm ci`).
# Quiet unless it fails; ends by printing the wasm size, raw and gzipped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

crate="${1:-worker}"
crate="${crate%/}"
die() { echo "build-worker: $*" >&2; exit 1; }
[ -f "$crate/Cargo.toml" ] || die "$crate/Cargo.toml not found (give a crate directory relative to the repository)"

command -v worker-build >/dev/null || die "worker-build not found (cargo install worker-build --version 0.8.7 --locked)"
bindgen="$(command -v wasm-bindgen)" || die "wasm-bindgen not found (cargo install wasm-bindgen-cli --version 0.2.130)"
want="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' "$crate/Cargo.toml")"
have="$("$bindgen" --version | awk '{print $2}')"
[ "$want" = "$have" ] || die "wasm-bindgen CLI is $have but $crate/Cargo.toml pins ${want:-nothing (pin it with =)}"
[ -x node_modules/.bin/wasm-opt ] && [ -x node_modules/.bin/esbuild ] || die "node_modules missing: run npm ci"

# A crate with a js/entry.js gets that default export instead of worker-build's (see
# scripts/worker-entry.mjs), through a stand-in for esbuild.
esbuild="$root/node_modules/.bin/esbuild"
entry_env=()
if [ -f "$crate/js/entry.js" ]; then
  entry_env=(WORKER_ENTRY="$root/$crate/js/entry.js" REAL_ESBUILD="$esbuild")
  esbuild="$root/scripts/worker-entry.mjs"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
started=$(date +%s)
if ! (
  cd "$crate" &&
    env "${entry_env[@]}" \
      WASM_BINDGEN_BIN="$bindgen" \
      WASM_OPT_BIN="$root/node_modules/.bin/wasm-opt" \
      ESBUILD_BIN="$esbuild" \
      worker-build --release
) >"$log" 2>&1; then
  cat "$log" >&2
  die "worker-build failed"
fi

wasm="$crate/build/index_bg.wasm"
[ -f "$wasm" ] && [ -f "$crate/build/index.js" ] || { cat "$log" >&2; die "no $wasm after the build"; }
raw=$(wc -c <"$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "$crate/build: wasm ${raw} bytes ($((raw / 1024)) KiB), gzip ${gz} bytes ($((gz / 1024)) KiB), built in $(($(date +%s) - started)) s"
