// When the server starts (Node). With NEXT_MANUAL_SIG_HANDLE set (`npm start` sets it), the app
// handles SIGTERM and SIGINT itself: the event reporters send what they hold (5 s at most) before
// the process exits, so an order taken just before a deploy keeps its events. Next's own
// handler would exit without waiting for them.

import { closeReporters } from "./lib/edgeplane";

if (process.env.NEXT_MANUAL_SIG_HANDLE) {
  let stopping = false;
  const stop = (code: number) => () => {
    if (stopping) return;
    stopping = true;
    closeReporters(5000)
      .catch((e: unknown) => console.error("closing the event reporters failed", e))
      .finally(() => process.exit(code));
  };
  process.once("SIGTERM", stop(143));
  process.once("SIGINT", stop(130));
}
