// The committed types are what openapi-typescript makes of the committed OpenAPI document, and
// the reporter's limits and patterns are the document's.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

import { MAX_BATCH, PATTERNS } from "../dist/events.js";
import { DOCUMENT, generate, SCHEMA } from "../scripts/generate.mjs";

const doc = JSON.parse(fs.readFileSync(DOCUMENT, "utf8"));

test("src/schema.d.ts is generated from core/src/http/openapi/openapi.json (npm run generate)", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-schema-"));
  try {
    const out = path.join(dir, "schema.d.ts");
    await generate(out);
    const committed = fs.readFileSync(SCHEMA, "utf8");
    const fresh = fs.readFileSync(out, "utf8");
    assert.ok(committed === fresh, "src/schema.d.ts differs from the document's types: run `npm run generate` in clients/typescript");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the reporter's batch limit is the API's maxItems", () => {
  for (const name of ["ReportBillingEventsRequest", "ReportAuditEventsRequest"]) {
    const variants = doc.components.schemas[name].oneOf;
    const limits = variants.flatMap((v) => [v.maxItems, v.properties?.events?.maxItems]).filter((n) => n !== undefined);
    assert.deepEqual([...new Set(limits)], [MAX_BATCH], name);
  }
});

test("the reporter checks the API's field patterns", () => {
  const { BillingEvent, AuditEvent } = doc.components.schemas;
  for (const [field, pattern] of Object.entries(PATTERNS)) {
    const schema = AuditEvent.properties[field] ?? BillingEvent.properties[field];
    assert.equal(pattern, schema.pattern, field);
  }
  assert.deepEqual(AuditEvent.properties.outcome.enum, ["success", "failure"]);
});
