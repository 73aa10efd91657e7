# Edgeplane: `make dev` runs it locally with a seeded demo, `make test` runs every test.
# Both install what they need (scripts/install-tools.sh) and reuse it on the next run.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(HOME)/.cargo/bin:$(HOME)/.local/bin:$(PATH)
export WRANGLER_SEND_METRICS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false
export WRANGLER_HIDE_BANNER := true
export CARGO_TERM_QUIET := true

# The Spin component, where cargo puts it (under CARGO_TARGET_DIR when that is set); the test
# harnesses and benchmarks read it from EDGEPLANE_SPIN_WASM, unless the caller names another.
SPIN_WASM := $(or $(CARGO_TARGET_DIR),target)/wasm32-wasip2/release/edgeplane_spin.wasm
export EDGEPLANE_SPIN_WASM ?= $(abspath $(SPIN_WASM))
# The Spin test host is a test tool, the same for every checkout: built once per machine, outside
# the checkout, so a fresh clone reuses it.
SPIN_HOST_TARGET ?= $(HOME)/.cache/edgeplane/spin-host-target
SPIN_HOST := $(SPIN_HOST_TARGET)/debug/spin-test-host

.PHONY: help tools worker spin spin-host dev test unit openapi lint fmt check-core-deps check-spin-imports \
        contract schemathesis reliability deploy-check bench bench-flags bench-scale bench-events verify-events \
        clean bench-users bench-oidc bench-edge bench-console spin-floor worker-floor fuzz-smoke browser clients \
        rust-client edge-app example-edge-app example-nextjs dev-app

help:
	@echo "make dev    build and run Edgeplane locally (wrangler dev) with a seeded demo and the console,"
	@echo "            operators signing in at a development identity provider (scripts/dev-idp.mjs)"
	@echo "make dev-app  make dev's Edgeplane and demo, with the example Next.js app (examples/nextjs-app)"
	@echo "            beside it on http://127.0.0.1:3000, signed in through Edgeplane"
	@echo "make test   every test: lints, core unit tests, contract suite on workerd and on the Spin build,"
	@echo "            the consoles in Chromium (make browser), the example Next.js app (make example-nextjs),"
	@echo "            the TypeScript client (make clients), the Rust client (make rust-client),"
	@echo "            the example Rust Worker app (make example-edge-app)"
	@echo "make openapi  write core/src/http/openapi/openapi.json from the route table and the types"
	@echo "make bench  benchmarks (bench/RESULTS.md); make bench-flags: flag delivery vs Unleash Edge;"
	@echo "            make bench-scale: tenant capacity; make bench-oidc: OpenID Connect provider;"
	@echo "            make bench-edge: edge hot paths' CPU per request against each runtime's hello-world"
	@echo "            make bench-console: each console page's server time and transfer, on both runtimes"

tools:
	@scripts/install-tools.sh

## Builds -----------------------------------------------------------------------------------

# Rebuilt only when a source it is made from changed (wrangler's [build] also runs `make worker`).
WORKER_SOURCES := $(shell find core/src worker/src worker/js d1-migrations -type f 2>/dev/null) \
                  Cargo.toml Cargo.lock core/Cargo.toml worker/Cargo.toml scripts/build-worker.sh \
                  scripts/worker-entry.mjs

worker: worker/build/index.js

worker/build/index.js: $(WORKER_SOURCES) | tools
	@scripts/build-worker.sh
	@touch $@

# At opt-level 3, not the release profile's "s": see Cargo.toml.
spin: tools
	CARGO_PROFILE_RELEASE_OPT_LEVEL=3 cargo build --target wasm32-wasip2 --release -p edgeplane-spin

spin-host:
	cargo build --manifest-path tests/spin-host/Cargo.toml --target-dir $(SPIN_HOST_TARGET)

# Spin's hello-world component, the floor of bench-edge's Spin table (its own workspace).
spin-floor: tools
	cargo build --manifest-path bench/spin-floor/Cargo.toml --target-dir bench/spin-floor/target \
	  --target wasm32-wasip2 --release

# The TypeScript client's build (dist/, not committed), which the example app links to.
TS_CLIENT_DIST := clients/typescript/dist/index.js
TS_CLIENT_SOURCES := $(shell find clients/typescript/src -type f) clients/typescript/tsconfig.json \
                     clients/typescript/package.json
$(TS_CLIENT_DIST): $(TS_CLIENT_SOURCES) | tools
	npm --prefix clients/typescript run --silent build

# The example Next.js app's production build (TypeScript checked by `next build`), rebuilt only
# when one of its sources or the client's changed (not when `make clients` merely rebuilt the
# same dist/); Next keeps its own cache in .next/cache.
NEXTJS_APP := examples/nextjs-app
NEXTJS_SOURCES := $(shell find $(NEXTJS_APP)/app $(NEXTJS_APP)/components $(NEXTJS_APP)/lib -type f) \
                  $(wildcard $(NEXTJS_APP)/*.ts $(NEXTJS_APP)/*.mjs $(NEXTJS_APP)/*.json) package-lock.json

$(NEXTJS_APP)/.next/BUILD_ID: $(NEXTJS_SOURCES) $(TS_CLIENT_SOURCES) | $(TS_CLIENT_DIST)
	cd $(NEXTJS_APP) && NEXT_TELEMETRY_DISABLED=1 ../../node_modules/.bin/next build
	@touch $@

# Two Rust Workers, the second and third floors of bench-edge's Workers table (workspaces of their
# own, sharing one target directory), built like Edgeplane's worker: the workers-rs hello-world
# and the least a wasm-bindgen `fetch` can do.
worker-floor: tools
	@CARGO_TARGET_DIR=$(CURDIR)/bench/worker-floor/target scripts/build-worker.sh bench/worker-floor
	@CARGO_TARGET_DIR=$(CURDIR)/bench/worker-floor/target scripts/build-worker.sh bench/worker-floor-bare

## Run --------------------------------------------------------------------------------------

dev: worker
	@scripts/dev.sh

# make dev, plus the example Next.js app (examples/nextjs-app) in development mode beside it,
# registered as the demo app's client: its redirect URIs, its flag and its .env.local.
dev-app: worker $(TS_CLIENT_DIST)
	@node scripts/dev-app.mjs

# Hash-chain check (GET /v1/audit/verify) of the instance `make dev` runs, as its auditor:
# KIND=audit|billing, TENANT, FROM, TO (RFC 3339) optional. Fails on a broken link.
verify-events:
	@node scripts/verify-events.mjs

## Tests ------------------------------------------------------------------------------------

test: tools lint check-core-deps unit fuzz-smoke worker spin spin-host check-spin-imports contract browser example-nextjs clients rust-client example-edge-app schemathesis reliability deploy-check
	@echo "make test: all green"

fmt:
	cargo fmt --all
	cargo fmt --manifest-path core/fuzz/Cargo.toml --all

lint: tools
	cargo fmt --all -- --check
	cargo fmt --manifest-path core/fuzz/Cargo.toml --all -- --check
	cargo clippy -p edgeplane-core -p edgeplane-tests --all-targets -- -D warnings
	cargo clippy -p edgeplane-worker --target wasm32-unknown-unknown -- -D warnings
	cargo clippy -p edgeplane-spin --target wasm32-wasip2 -- -D warnings
	cargo clippy --manifest-path tests/spin-host/Cargo.toml --target-dir $(SPIN_HOST_TARGET) -- -D warnings

unit:
	cargo test -p edgeplane-core

# Writes core/src/http/openapi/openapi.json from the route table and the Rust types, then the
# TypeScript client's types from it; `make unit` fails while the committed document is not the
# generated one, `make clients` while the types are not.
openapi:
	UPDATE_OPENAPI=1 cargo test -p edgeplane-core --lib served_document_is_generated
	npm --prefix clients/typescript run --silent generate

# Core's parsers of hostile input under libFuzzer (core/fuzz/): each target briefly, over its
# committed corpus, so a regression on a known input fails here. New inputs go to a scratch
# directory, never to the corpus; a crash leaves its input in core/fuzz/artifacts/. Built with
# nightly, without a sanitizer (core has no unsafe code: the targets look for panics, broken
# properties, hangs and runaway memory), in a target directory outside the checkout, so a fresh
# clone reuses libFuzzer's and the dependencies' builds.
FUZZ_TARGET_DIR ?= $(HOME)/.cache/edgeplane/fuzz-target
FUZZ_TARGETS := webauthn_cbor jwt_parse ofrep_context event_batch flag_definition csv_writer
FUZZ_SMOKE_RUNS ?= 100000

fuzz-smoke: tools
	@cd core/fuzz && cargo +nightly fuzz build -s none --target-dir $(FUZZ_TARGET_DIR)
	@cd core/fuzz && scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p "$$scratch/$$t"; \
	  cargo +nightly fuzz run -s none --target-dir $(FUZZ_TARGET_DIR) $$t "$$scratch/$$t" corpus/$$t -- \
	    -runs=$(FUZZ_SMOKE_RUNS) -max_total_time=15 -timeout=5 -rss_limit_mb=2048 \
	    > "$$scratch/$$t.log" 2>&1 || { cat "$$scratch/$$t.log"; exit 1; }; \
	  grep -h "^Done" "$$scratch/$$t.log" | sed "s/^/$$t: /"; \
	done

# core must stay platform-neutral: no runtime crate in its dependency tree, on any target.
check-core-deps:
	@scripts/check-core-deps.sh

check-spin-imports: spin
	@scripts/check-spin-imports.sh $(SPIN_WASM)

contract: worker spin spin-host
	SPIN_TEST_HOST=$(SPIN_HOST) cargo test -p edgeplane-tests

# The web consoles in a real browser (Debian's Chromium, Playwright) on each runtime, signed in
# through the development OpenID provider scripts/dev-idp.mjs (tests/browser/README.md).
browser: worker spin spin-host
	SPIN_TEST_HOST=$(SPIN_HOST) npx playwright test -c tests/browser/playwright.config.mjs

# The example Next.js app (examples/nextjs-app) in Chromium, in production mode beside the built
# worker in workerd: sign-in through Edgeplane's login page, a flag change followed within the
# freshness bound, an order's billing and audit events in the exports.
example-nextjs: worker $(NEXTJS_APP)/.next/BUILD_ID
	npx playwright test -c $(NEXTJS_APP)/e2e/playwright.config.mjs

# The TypeScript library managed apps link to (clients/typescript): its typed client, token
# verifier, event reporter and OpenFeature providers against the built worker in workerd, and
# its generated types against the committed OpenAPI document.
clients: worker
	npm --prefix clients/typescript test

# The Rust library managed apps link to (clients/rust, a Cargo workspace of its own): its token
# verifier, introspector, OFREP flags client and event reporter against the built worker in
# workerd, lints, and wasm builds without the native seam and with the Workers one (feature
# `worker`). Its target directory is outside the checkout, so a fresh clone reuses the
# dependencies' builds.
RS_CLIENT_TARGET ?= $(HOME)/.cache/edgeplane/rs-client-target
RS_CLIENT := --manifest-path clients/rust/Cargo.toml --target-dir $(RS_CLIENT_TARGET)

rust-client: worker
	cargo fmt --manifest-path clients/rust/Cargo.toml --all -- --check
	cargo clippy $(RS_CLIENT) --all-targets -- -D warnings
	cargo clippy $(RS_CLIENT) --no-default-features --target wasm32-unknown-unknown -- -D warnings
	cargo clippy $(RS_CLIENT) --no-default-features --features worker --target wasm32-unknown-unknown -- -D warnings
	cargo test $(RS_CLIENT)

# examples/edge-app, a managed app as a Rust Worker (a Cargo workspace of its own, on the Rust
# client's `worker` feature), built by the same script as Edgeplane's worker into
# examples/edge-app/build/, in a target directory outside the checkout so a fresh clone reuses it.
EDGE_APP_TARGET ?= $(HOME)/.cache/edgeplane/edge-app-target
EDGE_APP := --manifest-path examples/edge-app/Cargo.toml --target-dir $(EDGE_APP_TARGET)
EDGE_APP_SOURCES := $(shell find examples/edge-app/src clients/rust/src -type f 2>/dev/null) \
                    examples/edge-app/Cargo.toml examples/edge-app/Cargo.lock clients/rust/Cargo.toml \
                    scripts/build-worker.sh

edge-app: examples/edge-app/build/index.js

examples/edge-app/build/index.js: $(EDGE_APP_SOURCES) | tools
	@CARGO_TARGET_DIR=$(EDGE_APP_TARGET) scripts/build-worker.sh examples/edge-app
	@touch $@

# Its lints, then its tests: the app and Edgeplane in the same Miniflare, the app's service
# binding counted on its way (tests/harness/workerd.mjs --app), Edgeplane seeded as the
# TypeScript client's tests seed it; then its bundle built for deployment offline, with its size.
example-edge-app: worker edge-app
	cargo fmt --manifest-path examples/edge-app/Cargo.toml --all -- --check
	cargo clippy $(EDGE_APP) --target wasm32-unknown-unknown --all-targets -- -D warnings
	node --test --test-concurrency=1 --test-timeout=60000 examples/edge-app/test/edge-app.test.mjs
	@rm -rf build/edge-app-dry-run && mkdir -p build
	@cd examples/edge-app && ../../node_modules/.bin/wrangler deploy --dry-run --outdir ../../build/edge-app-dry-run \
	  > ../../build/edge-app-dry-run.log 2>&1 || { cat ../../build/edge-app-dry-run.log; exit 1; }
	@grep -E "Total Upload|env\." build/edge-app-dry-run.log || true

# The OpenAPI document against the running worker: schemathesis, every check on every operation
# (schemathesis.toml says what a schema cannot).
schemathesis: worker
	scripts/schemathesis.sh

# FR-BILL-001: events acknowledged while workerd is SIGKILLed and restarted are exported exactly
# once (short form; `node tests/reliability/events-sigkill.mjs` alone runs 100,000 events). Then
# the same through each client library's event reporter (tests/reliability/reporter-sigkill.mjs):
# nothing lost, nothing stored twice, and a full queue reports exactly what it refused.
reliability: worker
	EVENTS=20000 KILLS=4 node tests/reliability/events-sigkill.mjs
	npm --prefix clients/typescript run --silent build
	node tests/reliability/reporter-sigkill.mjs
	cargo build $(RS_CLIENT) --quiet --example report_events
	REPORTER=rust RUST_REPORTER=$(RS_CLIENT_TARGET)/debug/examples/report_events node tests/reliability/reporter-sigkill.mjs

# The deployment bundle builds offline (wrangler deploy --dry-run), with its size.
deploy-check: worker
	@rm -rf build/dry-run && mkdir -p build
	@npx wrangler deploy --dry-run --outdir build/dry-run > build/deploy-dry-run.log 2>&1 || { cat build/deploy-dry-run.log; exit 1; }
	@grep -E "Total Upload|env\.|Your Worker has access" build/deploy-dry-run.log || true

bench: worker
	@bench/run.sh

# FR-FLAG-002: OFREP bulk evaluation of 5 and 100 flags at 1 and 32 connections, against
# Unleash Edge (offline, same flags, same wrk) when its binary is installed, and the handler's
# own work per request (native).
UNLEASH_EDGE ?= $(HOME)/.cargo/bin/unleash-edge

bench-flags: worker
	@[ -x "$(UNLEASH_EDGE)" ] || { echo "==> installing unleash-edge (cargo, several minutes)"; cargo install unleash-edge --locked; }
	@UNLEASH_EDGE=$(UNLEASH_EDGE) node bench/flags.mjs
	@cargo bench -p edgeplane-core --bench flag_eval

# NFR-CAP-001/002: 1,000 tenants and 10,000-user tenants seeded in D1; list and lookup latency
# at scale against empty.
bench-scale: worker
	@node bench/tenants-scale.mjs

# Event ingestion (batches of 1 and 100, durable ack) and the auditor's CSV export rate.
bench-events: worker
	@node bench/events.mjs

# FR-TENANT-004: the tenant user list with 10,000 users in one tenant (first page, deep cursor
# page, status filter, email prefix search).
bench-users: worker
	@node bench/users.mjs

# FR-AUTH-001: the OpenID Connect provider: discovery and JWKS throughput, a whole code + PKCE
# sign-in through the login page by HTTP (each step timed), refresh grants, userinfo.
bench-oidc: worker
	@node bench/oidc.mjs

# Edge hot paths (health, JWKS, discovery, OFREP of 5 and 100 flags, /v1/flags, introspection):
# CPU per request against a JS hello-world worker in the same Miniflare, req/s and p50/p99 at 1
# and 32 connections; then the Spin build in the Spin test host against Spin's hello-world
# component (keep-alive and Connection: close). DURATION (5s), CONNECTIONS (1,32),
# TABLES (workers,spin).
# Each console page's time to answer (p50, p95) and transfer, signed in, on both runtimes.
bench-console: worker spin spin-host
	@SPIN_TEST_HOST=$${SPIN_TEST_HOST:-$(SPIN_HOST)} node bench/console.mjs

bench-edge: worker spin spin-host spin-floor worker-floor
	@command -v wrk > /dev/null || { echo "==> installing wrk (Debian package)"; \
	  if [ "$$(id -u)" -eq 0 ]; then apt-get install -y -qq wrk > /dev/null; else sudo apt-get install -y -qq wrk > /dev/null; fi; }
	@SPIN_TEST_HOST=$${SPIN_TEST_HOST:-$(SPIN_HOST)} node bench/edge.mjs

clean:
	cargo clean
	rm -rf core/fuzz/target core/fuzz/artifacts
	rm -rf worker/build build .wrangler .edgeplane examples/edge-app/build bench/worker-floor/build bench/worker-floor/target bench/worker-floor-bare/build
