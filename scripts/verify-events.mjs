#!/usr/bin/env node
// Hash-chain check of the instance `make dev` runs (GET /v1/audit/verify as its auditor): prints
// the result and exits 1 on a broken link. Environment: KIND (audit|billing), TENANT, FROM, TO
// (RFC 3339 or unix ms), all optional; the base URL and token come from .edgeplane/demo.json.
import fs from "node:fs";

const demo = JSON.parse(fs.readFileSync(".edgeplane/demo.json", "utf8"));
const q = new URLSearchParams(
  Object.entries({ kind: process.env.KIND, tenant: process.env.TENANT, from: process.env.FROM, to: process.env.TO })
    .filter(([, v]) => v),
);
const res = await fetch(`${demo.base_url}/v1/audit/verify?${q}`, {
  headers: { authorization: `Bearer ${demo.auditor_token}` },
});
const body = await res.json();
console.log(JSON.stringify(body, null, 2));
process.exit(res.ok && body.ok ? 0 : 1);
