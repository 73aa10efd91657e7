// V8 CPU profiles of a worker served by the workerd harness (started with --inspector-port), over
// the Chrome DevTools protocol: where a route's CPU goes, function by function, Wasm included
// (the worker's Wasm keeps its name section). Used by bench/edge.mjs when PROFILE is set.

import WebSocket from "ws";

/** The DevTools WebSocket URL of the worker named `name` behind the inspector at `port`. */
async function target(port, name) {
  const list = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const found = list.find((t) => t.title === name || t.id?.includes(name) || t.url?.includes(name)) ?? list[0];
  if (!found) throw new Error(`no inspector target for ${name}: ${JSON.stringify(list)}`);
  return found.webSocketDebuggerUrl;
}

/** A minimal protocol session: `send(method, params)` resolves to the result. */
async function session(url) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
  let next = 1;
  const waiting = new Map();
  ws.on("message", (data) => {
    const msg = JSON.parse(data.toString());
    const w = msg.id && waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id);
    if (msg.error) w.reject(new Error(JSON.stringify(msg.error)));
    else w.resolve(msg.result);
  });
  const send = (method, params = {}) => new Promise((resolve, reject) => {
    const id = next++;
    waiting.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params }));
  });
  return { send, close: () => ws.close() };
}

/** Profiles the worker `name` while `work()` runs (sampling every `intervalUs`) and returns
 * `{ total, rows }`: self time per function (µs), largest first. */
export async function profile(port, name, work, intervalUs = 25) {
  const s = await session(await target(port, name));
  await s.send("Profiler.enable");
  await s.send("Profiler.setSamplingInterval", { interval: intervalUs });
  await s.send("Profiler.start");
  await work();
  const { profile: p } = await s.send("Profiler.stop");
  s.close();
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const deltas = p.timeDeltas ?? [];
  p.samples.forEach((id, i) => {
    const n = byId.get(id);
    const f = n.callFrame;
    const key = `${f.functionName || "(anonymous)"} ${f.url ? f.url.split("/").pop() : ""}`.trim();
    self.set(key, (self.get(key) ?? 0) + (deltas[i + 1] ?? 0));
  });
  const total = [...self.entries()].filter(([k]) => k !== "(idle)").reduce((a, [, v]) => a + v, 0);
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]);
  return { total, rows };
}
