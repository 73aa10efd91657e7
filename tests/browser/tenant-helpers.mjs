// What the tenant console's browser tests share: a tenant provisioned through the API, its
// mailed invitation accepted, a sign-in through Edgeplane's universal login, and TOTP codes.

import { createHmac, randomBytes } from "node:crypto";
import { expect } from "./fixtures.mjs";

/** The password every test account gets. */
export const PASSWORD = "correct horse battery staple 42!";

/** RFC 6238 code of a base32 `secret` now (SHA-1, 6 digits, 30 s). */
export function totp(secret, offsetSteps = 0) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "").toUpperCase()) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + offsetSteps));
  const h = createHmac("sha1", key).update(counter).digest();
  const o = h[h.length - 1] & 0xf;
  const n = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(n % 1_000_000).padStart(6, "0");
}

/** The latest mailed link of `kind` (`invitation`, `password-reset`) to `to`, from the dev outbox. */
export async function mailedLink(request, to, kind) {
  const resp = await request.get(`/__dev/mail?to=${encodeURIComponent(to)}`);
  const text = JSON.stringify(await resp.json());
  const m = text.match(new RegExp(`https?://[^"\\s\\\\]+/console/account/${kind}\\?token=[A-Za-z0-9_-]+`));
  expect(m, `a ${kind} link mailed to ${to}`).not.toBeNull();
  return m[0];
}

/** Accepts an invitation link with `password`. */
export async function accept(page, link, password) {
  await page.goto(link);
  await page.getByLabel("New password").fill(password);
  await page.getByLabel("The same password again").fill(password);
  await page.getByRole("button", { name: "Create my account" }).click();
  await expect(page.getByText("Your account is ready")).toBeVisible();
}

/**
 * Signs in to the tenant console through the universal login; `code` answers a second factor
 * with a code, `secondFactor(page)` in any other way (a passkey).
 */
export async function signIn(page, domain, email, password, code, secondFactor) {
  await page.goto("/console/signin");
  await page.getByLabel("Organization").fill(domain);
  await page.getByRole("button", { name: "Continue to sign-in" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  if (code) {
    await page.getByLabel("Authentication code").fill(code());
    await page.getByRole("button", { name: "Verify" }).click();
  }
  if (secondFactor) await secondFactor(page);
  await expect(page.getByRole("heading", { name: "Users", level: 1 })).toBeVisible();
}

export async function signOut(page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/console\/signin/);
}

/**
 * A tenant provisioned through the API, with `apps` enabled for it; returns its id, domain,
 * owner email and invitation link.
 */
export async function provision(request, edgeplane, label, apps = []) {
  const suffix = `${label}-${Date.now().toString(36)}-${randomBytes(2).toString("hex")}`;
  const domain = `t-${suffix}`;
  const owner = `owner@${domain}.example`;
  const resp = await request.post("/v1/tenants", {
    headers: { Authorization: `Bearer ${await edgeplane.operatorToken("operator")}` },
    data: { name: `Tenant ${suffix}`, domain, plan: "pro", owner_email: owner, apps },
  });
  expect(resp.status(), await resp.text()).toBe(201);
  const body = await resp.json();
  return { id: body.tenant.id, domain, owner, link: body.invitation_link };
}
