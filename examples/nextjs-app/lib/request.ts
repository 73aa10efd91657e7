/** What the app reads of the request beyond cookies. */

import "server-only";

import { isIP } from "node:net";
import { headers } from "next/headers";

/**
 * The user's address for the audit trail: the first X-Forwarded-For entry, which `next start`
 * sets to the connection's peer when no proxy did. Behind a proxy, make sure it is the proxy
 * that sets the header (a browser can send one too). "0.0.0.0" when unknown: the audit API
 * requires an address.
 */
export async function clientIp(): Promise<string> {
  const h = await headers();
  const first = (h.get("x-forwarded-for") ?? h.get("x-real-ip") ?? "").split(",")[0]?.trim() ?? "";
  const v4mapped = first.match(/^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i);
  const ip = v4mapped?.[1] ?? first;
  return isIP(ip) ? ip : "0.0.0.0";
}
