// node bench/ed25519/run.mjs: Ed25519 verification time, native and as wasm (V8, as in workerd),
// built with the worker's release settings. Needs the wasm32-unknown-unknown target.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const dir = path.dirname(fileURLToPath(import.meta.url));
const cargo = (...a) => execFileSync("cargo", a, { cwd: dir, stdio: ["ignore", "pipe", "inherit"] }).toString();
cargo("build", "--release", "--target", "wasm32-unknown-unknown", "--lib");
process.stdout.write(cargo("run", "--release", "--quiet", "--bin", "native"));
const wasm = fs.readFileSync(path.join(dir, "target/wasm32-unknown-unknown/release/edgeplane_bench_ed25519.wasm"));
const { instance } = await WebAssembly.instantiate(wasm, {});
const n = 20_000;
instance.exports.verify_n(1_000);
const t0 = performance.now();
const ok = instance.exports.verify_n(n);
const us = ((performance.now() - t0) * 1000) / n;
if (ok !== n) throw new Error(`only ${ok} of ${n} verified`);
console.log(`wasm (V8 ${process.versions.v8}): ${us.toFixed(1)} µs per verification (${n} runs)`);
