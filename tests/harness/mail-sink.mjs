// A stand-in for an HTTP mail API (Resend-style `POST /emails`) for the mail contract test
// (tests/api/mail.rs). Listens on 127.0.0.1 on a random port and prints one ready line,
// `{"url":"http://127.0.0.1:PORT/emails"}`; stop it by its PID (or by closing stdin). It also
// exits by itself after --max-seconds (default 300).
//
//   node tests/harness/mail-sink.mjs [--max-seconds N]
//
// Every POST is answered 200 `{"id":"mail-N"}` and recorded: method, path, the `authorization`
// and `content-type` headers, and the body (parsed as JSON when it is, else null, with the raw
// text beside it). `GET /received` returns the recorded list as JSON, oldest first.

import http from "node:http";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const maxSeconds = Number(opt("--max-seconds", "300"));
if (!Number.isFinite(maxSeconds) || maxSeconds <= 0) {
  console.error("usage: mail-sink.mjs [--max-seconds N]");
  process.exit(2);
}

const received = [];

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const raw = Buffer.concat(chunks).toString("utf8");
    if (req.method === "GET" && req.url === "/received") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(received));
      return;
    }
    if (req.method !== "POST") {
      res.writeHead(405, { "content-type": "application/json", allow: "POST" });
      res.end(JSON.stringify({ error: "method not allowed" }));
      return;
    }
    let body = null;
    try {
      body = JSON.parse(raw);
    } catch {
      body = null;
    }
    received.push({
      method: req.method,
      path: req.url,
      authorization: req.headers.authorization ?? null,
      content_type: req.headers["content-type"] ?? null,
      body,
      raw,
    });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ id: `mail-${received.length}` }));
  });
});

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  console.log(JSON.stringify({ url: `http://127.0.0.1:${port}/emails` }));
});

setTimeout(() => process.exit(0), maxSeconds * 1000).unref();
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
