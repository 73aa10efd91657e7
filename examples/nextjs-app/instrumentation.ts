// Runs once when the server starts; the Node-only part is in instrumentation-node.ts (Next
// compiles this file for the Edge runtime too).

export async function register() {
  if (process.env.NEXT_RUNTIME === "nodejs") await import("./instrumentation-node");
}
