// A JS worker that does at the runtime's API what Edgeplane's hot routes do there, and nothing
// else: for bench/edge.mjs, what the I/O of a route costs by itself, beside the bare floor
// (bench/floor-worker.js, which reads nothing and answers "ok").
//
// - GET: reads every request header (as the Worker's `requestHead` does) and answers with the
//   body and headers Edgeplane's `GET /health` answers with: `{"status":"ok"}`, content type,
//   `Cache-Control`, `nosniff` and a fresh `x-request-id`, appended to a `Headers` one by one
//   from a copy of the body (as its `newResponse` does).
// - POST: also reads the body (a JSON OFREP request), parses it, and answers with a JSON body
//   of five evaluations, the size of Edgeplane's OFREP answer for five flags.
// No routing, no key check, no flag evaluation, no JSON schema: the difference between an
// Edgeplane row and this one's is Edgeplane's own work and its crossing into Wasm.

const encoder = new TextEncoder();

function head(request) {
  let s = (request.body === null ? "-" : "b") + request.method + "\n" + request.url + "\n";
  for (const [name, value] of request.headers) s += name + "\n" + value + "\n";
  return s;
}

function answer(status, lines, body) {
  const headers = new Headers();
  const parts = lines.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) headers.append(parts[i], parts[i + 1]);
  return new Response(body.slice(), { status, headers });
}

function lines(contentType) {
  return `content-type\n${contentType}\ncache-control\nno-store\nx-content-type-options\nnosniff\n` +
    `x-request-id\n${crypto.randomUUID()}\n`;
}

function evaluations(context) {
  const flags = [];
  for (let i = 0; i < 5; i++) {
    flags.push({ key: `f00${i}`, value: i % 2 === 0, reason: "STATIC", variant: "default", metadata: {} });
  }
  return { flags, targetingKey: context?.targetingKey ?? null };
}

export default {
  fetch(request) {
    // Read as Edgeplane reads it; an empty head would be a broken request.
    if (head(request).length === 0) throw new Error("no request head");
    if (request.method !== "POST") {
      return answer(200, lines("application/json"), encoder.encode('{"status":"ok"}'));
    }
    return request.arrayBuffer().then((buf) => {
      const parsed = JSON.parse(new TextDecoder().decode(buf));
      const body = encoder.encode(JSON.stringify(evaluations(parsed.context)));
      return answer(200, lines("application/json") + 'etag\n"1"\n', body);
    });
  },
};
