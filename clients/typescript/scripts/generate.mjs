#!/usr/bin/env node
// Writes src/schema.d.ts, the API's types, from the OpenAPI document that core generates
// (core/src/http/openapi/openapi.json, served at /openapi.json) with openapi-typescript.
// `npm run generate` runs it after the document changed; test/schema.test.mjs runs the same
// generation into a scratch file and fails while the committed types differ.

import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The OpenAPI document the types are generated from. */
export const DOCUMENT = path.resolve(HERE, "../../../core/src/http/openapi/openapi.json");
/** The committed types. */
export const SCHEMA = path.resolve(HERE, "../src/schema.d.ts");

const require = createRequire(import.meta.url);
const CLI = path.join(path.dirname(require.resolve("openapi-typescript/package.json")), "bin", "cli.js");

/** Generates the types of DOCUMENT into `out`. */
export async function generate(out = SCHEMA) {
  await promisify(execFile)(process.execPath, [CLI, DOCUMENT, "--output", out]);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await generate();
  console.log(`wrote ${path.relative(process.cwd(), SCHEMA)} from ${path.relative(process.cwd(), DOCUMENT)}`);
}
