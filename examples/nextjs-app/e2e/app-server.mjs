// The Next.js app in production mode for the browser test: `next start` of the build in .next
// (made beforehand by `make example-nextjs`), on a port of 127.0.0.1, with the environment the
// test gives it. Stopped by its PID: SIGTERM, which the app answers by flushing its event
// reporters (instrumentation-node.ts), then SIGKILL if it lingers.

import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Where the run's server logs go (emptied by global-setup.mjs). */
export const LOG_DIR = path.join(path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", ".."), "target", "browser", "nextjs-app", "logs");

/** The app's folder. */
export const APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const NEXT_BIN = path.join(APP_DIR, "..", "..", "node_modules", "next", "dist", "bin", "next");
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts the built app on `port` with `env`; resolves once it answers HTTP. */
export async function startApp({ port, env, logFile }) {
  if (!fs.existsSync(path.join(APP_DIR, ".next", "BUILD_ID"))) {
    throw new Error("examples/nextjs-app is not built: run `make example-nextjs` (or `npm run build` in the app)");
  }
  const log = fs.openSync(logFile, "a");
  const child = spawn(process.execPath, [NEXT_BIN, "start", "--hostname", "127.0.0.1", "--port", String(port)], {
    cwd: APP_DIR,
    stdio: ["ignore", log, log],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: "production",
      NEXT_TELEMETRY_DISABLED: "1",
      // The app flushes its event reporters on SIGTERM (instrumentation-node.ts).
      NEXT_MANUAL_SIG_HANDLE: "true",
      ...env,
    },
  });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  let gone = false;
  exited.then(() => {
    gone = true;
  });
  const stop = async () => {
    if (!gone) {
      child.kill("SIGTERM");
      const done = await Promise.race([exited, sleep(STOP_TIMEOUT_MS).then(() => false)]);
      if (!done) {
        child.kill("SIGKILL");
        await exited;
      }
    }
    fs.closeSync(log);
  };

  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (gone) {
      await stop();
      throw new Error(`next start exited before it answered (log: ${logFile}):\n${fs.readFileSync(logFile, "utf8").slice(-2000)}`);
    }
    try {
      const res = await fetch(url, { redirect: "manual" });
      await res.arrayBuffer();
      if (res.status < 500) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`next start did not answer within ${READY_TIMEOUT_MS / 1000} s (log: ${logFile})`);
    }
    await sleep(200);
  }
  return { pid: child.pid, stop };
}
