// `npm test`'s runner: starts one Edgeplane (test/stack.mjs) for all test files, runs them with
// node:test one file at a time (they share the server's signing keys: one rotates them), and
// stops the server. Arguments, if any, name the test files to run.

import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { startStack } from "./stack.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const files = process.argv.length > 2
  ? process.argv.slice(2).map((f) => path.resolve(f))
  : fs.readdirSync(HERE).filter((f) => f.endsWith(".test.mjs")).sort().map((f) => path.join(HERE, f));

const started = Date.now();
const { stack, stop, logFile, dir } = await startStack();
process.stderr.write(`edgeplane on ${stack.baseUrl}, seeded in ${Date.now() - started} ms (log: ${logFile})\n`);

const child = spawn(process.execPath, ["--test", "--test-concurrency=1", "--test-timeout=60000", ...files], {
  stdio: "inherit",
  env: { ...process.env, EDGEPLANE_TEST_STACK: JSON.stringify(stack) },
});
// Ctrl-C reaches the test run through the terminal; the server is stopped here all the same.
process.on("SIGINT", () => {});
const code = await new Promise((resolve) => child.on("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0))));
await stop();
// The state and the log stay for a failed run.
if (code === 0) fs.rmSync(dir, { recursive: true, force: true });
else process.stderr.write(`workerd log: ${logFile}\n`);
process.exit(code);
