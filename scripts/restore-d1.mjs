#!/usr/bin/env node
// Turns one day's backup of the control-plane database (core/src/backup/, NFR-OPS-004) back
// into one SQL file, which `wrangler d1 execute <fresh database> --file` (or `sqlite3`) runs to
// rebuild the database: schema, rows, AUTOINCREMENT counters, indexes.
//
//   node scripts/restore-d1.mjs --from <dir> --out restore.sql
//       <dir> holds manifest.json and the parts named in it, as downloaded from R2, e.g.
//       npx wrangler r2 object get edgeplane-archive/backups/d1/<day>/manifest.json --remote \
//         --file <dir>/manifest.json   (and each part the same way, or rclone copy the folder)
//   node scripts/restore-d1.mjs --local-state <dir> [--date YYYY-MM-DD] --out restore.sql
//       reads the local R2 bucket of `wrangler dev --persist-to <dir>` or of the test harness
//       (tests/harness/workerd.mjs --state <dir>); the latest day unless --date.
//   --manifest        print the manifest instead (with --from or --local-state)
//   --bucket <name>   the R2 bucket of --local-state (default edgeplane-archive)
//
// Sealed backups need the MASTER_KEY they were sealed under in the environment (the manifest
// names it by key_id; after a rotation, the previous key). Every part is checked against the
// manifest's SHA-256 before it is opened; any mismatch, a wrong key or a missing part stops the
// restore with nothing written.
//
// Then, into a fresh database:
//   npx wrangler d1 create edgeplane-restored --jurisdiction eu
//   npx wrangler d1 execute edgeplane-restored --remote --file restore.sql

import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

const FORMAT = "edgeplane-d1-sql/1";
const PREFIX = "backups/d1/";

function fail(message) {
  process.stderr.write(`restore-d1: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { bucket: "edgeplane-archive", manifestOnly: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case "--from": opts.from = path.resolve(value()); break;
      case "--local-state": opts.localState = path.resolve(value()); break;
      case "--date": opts.date = value(); break;
      case "--out": opts.out = path.resolve(value()); break;
      case "--bucket": opts.bucket = value(); break;
      case "--manifest": opts.manifestOnly = true; break;
      default: fail(`unknown argument ${arg}`);
    }
  }
  if (!opts.from === !opts.localState) fail("give exactly one of --from <dir> and --local-state <dir>");
  if (!opts.manifestOnly && !opts.out) fail("--out <file> is required");
  return opts;
}

/** Reads objects from a directory of downloaded objects (named by their last key segment). */
function directorySource(dir) {
  return {
    async manifest() {
      return fs.readFileSync(path.join(dir, "manifest.json"));
    },
    async get(key) {
      const file = path.join(dir, key.split("/").pop());
      return fs.existsSync(file) ? fs.readFileSync(file) : null;
    },
    async close() {},
  };
}

/** Reads objects from the local R2 state that wrangler dev and the test harness persist. */
async function localSource(state, bucketName, date) {
  const { Miniflare } = await import("miniflare");
  const mf = new Miniflare({
    modules: true,
    script: "export default { fetch() { return new Response(null); } }",
    r2Buckets: { ARCHIVE: bucketName },
    r2Persist: path.join(state, "v3", "r2"),
  });
  const bucket = await mf.getR2Bucket("ARCHIVE");
  const read = async (key) => {
    const object = await bucket.get(key);
    return object ? Buffer.from(await object.arrayBuffer()) : null;
  };
  let day = date;
  if (!day) {
    const days = new Set();
    let cursor;
    do {
      const page = await bucket.list({ prefix: PREFIX, cursor });
      for (const o of page.objects) {
        if (o.key.endsWith("/manifest.json")) days.add(o.key.slice(PREFIX.length).split("/")[0]);
      }
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    day = [...days].sort().pop();
    if (!day) {
      await mf.dispose();
      fail(`no finished backup under ${PREFIX} in ${state}`);
    }
  }
  return {
    async manifest() {
      const bytes = await read(`${PREFIX}${day}/manifest.json`);
      if (!bytes) fail(`no finished backup for ${day} in ${state}`);
      return bytes;
    },
    get: read,
    close: () => mf.dispose(),
  };
}

function masterKey() {
  const raw = (process.env.MASTER_KEY ?? "").trim();
  if (!raw) fail("the backup is sealed: set MASTER_KEY to the key it was sealed under");
  const key = Buffer.from(raw.replace(/-/g, "+").replace(/_/g, "/"), "base64");
  if (key.length !== 32) fail("MASTER_KEY is not 32 bytes of base64");
  return key;
}

/** core's MasterKey::key_id: SHA-256 of the GCM tag of nothing under a fixed label, 16 hex. */
function keyId(key) {
  const cipher = crypto.createCipheriv("aes-256-gcm", key, Buffer.alloc(12));
  cipher.setAAD(Buffer.from("edgeplane master key id"));
  cipher.final();
  return crypto.createHash("sha256").update(cipher.getAuthTag()).digest("hex").slice(0, 16);
}

function open(key, partKey, sealed) {
  const nonce = sealed.subarray(0, 12);
  const tag = sealed.subarray(sealed.length - 16);
  const body = sealed.subarray(12, sealed.length - 16);
  const decipher = crypto.createDecipheriv("aes-256-gcm", key, nonce);
  decipher.setAAD(Buffer.from(partKey));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    fail(`${partKey} does not open under this MASTER_KEY (tampered, or another key)`);
  }
}

const opts = parseArgs(process.argv.slice(2));
const source = opts.from
  ? directorySource(opts.from)
  : await localSource(opts.localState, opts.bucket, opts.date);
try {
  const manifest = JSON.parse((await source.manifest()).toString("utf8"));
  if (manifest.format !== FORMAT) fail(`unknown backup format ${manifest.format}`);
  if (opts.manifestOnly) {
    process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
  } else {
    const key = manifest.sealed ? masterKey() : null;
    if (key && manifest.key_id && keyId(key) !== manifest.key_id) {
      fail(`sealed under key ${manifest.key_id}, MASTER_KEY is ${keyId(key)}: use the key of that day`);
    }
    const texts = [];
    for (const part of manifest.parts) {
      const stored = await source.get(part.key);
      if (!stored) fail(`missing part ${part.key}`);
      const sha = crypto.createHash("sha256").update(stored).digest("hex");
      if (sha !== part.sha256) fail(`${part.key}: SHA-256 ${sha}, manifest says ${part.sha256}`);
      const gz = key ? open(key, part.key, stored) : stored;
      const text = zlib.gunzipSync(gz);
      if (text.length !== part.sql_bytes) fail(`${part.key}: ${text.length} bytes of SQL, manifest says ${part.sql_bytes}`);
      texts.push(text);
    }
    fs.writeFileSync(opts.out, Buffer.concat(texts));
    const rows = manifest.tables.reduce((n, t) => n + t.rows, 0);
    process.stderr.write(
      `restore-d1: ${manifest.date}: ${manifest.parts.length} parts, ${manifest.tables.length} tables, ` +
        `${rows} rows -> ${opts.out}\n`,
    );
  }
} finally {
  await source.close();
}
