// IF-TENANT-CONSOLE: a tenant's owner, start to end, in a real browser: accepts the mailed
// invitation, signs in through Edgeplane's universal login, turns on an authenticator app and
// signs in with it, invites an admin, disables a user and sets the password policy. Then the
// refusals: the admin cannot change the plan or SSO, another tenant's user is a 404, and a
// session whose Edgeplane session was revoked goes back to sign-in.

import { createHmac, randomBytes } from "node:crypto";
import { expect, expectAccessible, test } from "./fixtures.mjs";

/** RFC 6238 code of a base32 `secret` now (SHA-1, 6 digits, 30 s). */
function totp(secret, offsetSteps = 0) {
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
async function mailedLink(request, to, kind) {
  const resp = await request.get(`/__dev/mail?to=${encodeURIComponent(to)}`);
  const text = JSON.stringify(await resp.json());
  const m = text.match(new RegExp(`https?://[^"\\s\\\\]+/console/account/${kind}\\?token=[A-Za-z0-9_-]+`));
  expect(m, `a ${kind} link mailed to ${to}`).not.toBeNull();
  return m[0];
}

/** Accepts an invitation link with `password`. */
async function accept(page, link, password) {
  await page.goto(link);
  await page.getByLabel("New password").fill(password);
  await page.getByLabel("The same password again").fill(password);
  await page.getByRole("button", { name: "Create my account" }).click();
  await expect(page.getByText("Your account is ready")).toBeVisible();
}

/** Signs in to the tenant console through the universal login; `code` answers a second factor. */
async function signIn(page, domain, email, password, code) {
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
  await expect(page.getByRole("heading", { name: "Users", level: 1 })).toBeVisible();
}

async function signOut(page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/console\/signin/);
}

/** A tenant provisioned through the API; returns its id, domain, owner email and invitation link. */
async function provision(request, edgeplane, label) {
  const suffix = `${label}-${Date.now().toString(36)}-${randomBytes(2).toString("hex")}`;
  const domain = `t-${suffix}`;
  const owner = `owner@${domain}.example`;
  const resp = await request.post("/v1/tenants", {
    headers: { Authorization: `Bearer ${await edgeplane.operatorToken("operator")}` },
    data: { name: `Tenant ${suffix}`, domain, plan: "pro", owner_email: owner },
  });
  expect(resp.status()).toBe(201);
  const body = await resp.json();
  return { id: body.tenant.id, domain, owner, link: body.invitation_link };
}

const PASSWORD = "correct horse battery staple 42!";

test("an owner accepts the invitation, turns on TOTP, invites an admin, disables a user and sets the policy", async ({
  page,
  request,
  edgeplane,
  saveScreenshot,
}) => {
  const t = await provision(request, edgeplane, "own");
  expect(t.link).toContain("/console/account/invitation?token=");
  await accept(page, t.link, PASSWORD);
  await expectAccessible(page);

  await signIn(page, t.domain, t.owner, PASSWORD);
  await expectAccessible(page);

  // The owner's own authenticator app: the secret, a code from it, recovery codes once.
  await page.getByRole("link", { name: "Security" }).click();
  await page.getByRole("button", { name: "Set up an authenticator app" }).click();
  const secret = (await page.locator("#totp-secret").textContent()).trim();
  await expectAccessible(page);
  await page.getByLabel("Code from the app").fill("000000" === totp(secret) ? "111111" : "000000");
  await page.getByRole("button", { name: "Turn on" }).click();
  await expect(page.locator("#f-code-error")).toBeVisible();
  await page.getByLabel("Code from the app").fill(totp(secret));
  await page.getByRole("button", { name: "Turn on" }).click();
  await expect(page.locator("#recovery-codes li")).toHaveCount(10);
  await expectAccessible(page);

  // The next sign-in asks for the app's code. A code is accepted once, and the one that turned
  // the app on may still be current: the app's next code (one step of drift is allowed).
  await signOut(page);
  await signIn(page, t.domain, t.owner, PASSWORD, () => totp(secret, 1));
  await saveScreenshot("tenant-users");

  // Invite an admin and a user; the user accepts, then the owner disables them.
  const admin = `admin@${t.domain}.example`;
  const ana = `ana@${t.domain}.example`;
  for (const [email, role] of [[admin, "admin"], [ana, "user"]]) {
    await page.getByLabel("Email", { exact: true }).fill(email);
    await page.getByLabel("Role of the new user").selectOption(role);
    await page.getByRole("button", { name: "Send invitation" }).click();
    await expect(page.getByText("Invitation sent.")).toBeVisible();
  }
  await expect(page.getByRole("cell", { name: admin, exact: true }).first()).toBeVisible();
  const anaContext = await page.context().browser().newContext({ baseURL: edgeplane.baseURL });
  const anaPage = await anaContext.newPage();
  await accept(anaPage, await mailedLink(request, ana, "invitation"), PASSWORD);
  await anaContext.close();

  await page.goto(`/console/tenant/users?q=${encodeURIComponent("ana@")}`);
  await page.getByRole("link", { name: ana }).click();
  await page.getByRole("button", { name: "Disable user" }).click();
  await expect(page.getByText("User disabled")).toBeVisible();
  await expect(page.locator("dl.facts")).toContainText("disabled");
  await expectAccessible(page);
  await saveScreenshot("tenant-user");

  // The password policy.
  await page.getByRole("link", { name: "Security" }).click();
  await page.getByLabel("Minimum length").fill("14");
  await page.getByLabel("Require a digit").check();
  await page.getByRole("button", { name: "Save password policy" }).click();
  await expect(page.getByText("Password policy saved.")).toBeVisible();
  await expect(page.getByLabel("Minimum length")).toHaveValue("14");
  await expectAccessible(page);
  await saveScreenshot("tenant-security");

  // The owner changes the plan; the flags are read-only.
  await page.getByRole("link", { name: "Subscription" }).click();
  await page.getByRole("combobox", { name: "Plan" }).selectOption("enterprise");
  await page.getByRole("button", { name: "Change plan" }).click();
  await expect(page.getByText("Plan changed.")).toBeVisible();
  await page.getByRole("link", { name: "Flags" }).click();
  await expect(page.getByRole("heading", { name: "Flags", level: 1 })).toBeVisible();
  await expectAccessible(page);
});

test("an admin cannot change the plan or SSO, another tenant's user is a 404, a revoked session ends", async ({
  page,
  request,
  edgeplane,
}) => {
  const a = await provision(request, edgeplane, "a");
  const b = await provision(request, edgeplane, "b");
  await accept(page, a.link, PASSWORD);
  await accept(page, b.link, PASSWORD);

  // Tenant B's owner, and the id of that user.
  await signIn(page, b.domain, b.owner, PASSWORD);
  await page.getByRole("link", { name: b.owner }).click();
  const bUserUrl = page.url();
  await signOut(page);

  // Tenant A's owner invites an admin, who accepts and signs in.
  await signIn(page, a.domain, a.owner, PASSWORD);
  const admin = `admin@${a.domain}.example`;
  await page.getByLabel("Email", { exact: true }).fill(admin);
  await page.getByLabel("Role of the new user").selectOption("admin");
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByText("Invitation sent.")).toBeVisible();
  // Tenant A's owner opening tenant B's user: 404.
  const other = await page.goto(bUserUrl);
  expect(other.status()).toBe(404);
  await signOut(page);
  await accept(page, await mailedLink(request, admin, "invitation"), PASSWORD);
  await signIn(page, a.domain, admin, PASSWORD);

  await page.getByRole("link", { name: "Subscription" }).click();
  await expect(page.getByText("Only the tenant's owner changes the plan.")).toBeVisible();
  await expect(page.getByRole("button", { name: "Change plan" })).toHaveCount(0);
  // The server decides: the admin's own session posting the owner's form is refused.
  const csrf = await page.locator('input[name="csrf"]').first().getAttribute("value");
  const forged = await page.request.post("/console/tenant/subscription", {
    form: { csrf, once: "x", plan: "free" },
    headers: { Origin: edgeplane.baseURL },
  });
  expect(forged.status()).toBe(403);
  const sso = await page.request.post("/console/tenant/security/sso", {
    form: { csrf, once: "y", issuer_url: "https://idp.example", client_id: "x", enabled: "true" },
    headers: { Origin: edgeplane.baseURL },
  });
  expect(sso.status()).toBe(403);
  await page.getByRole("link", { name: "Security" }).click();
  await expect(page.getByText("Only the tenant's owner configures single sign-on.")).toBeVisible();

  // The owner (through the API) ends every session of the admin: the console session ends too.
  const ownerLogin = await request.post("/v1/auth/login", {
    data: { tenant: a.domain, email: a.owner, password: PASSWORD },
  });
  const ownerToken = (await ownerLogin.json()).access_token;
  const users = await request.get(`/v1/tenant/users?q=admin@`, { headers: { Authorization: `Bearer ${ownerToken}` } });
  const adminId = (await users.json()).items[0].id;
  const revoked = await request.post(`/v1/tenant/users/${adminId}/sessions/revoke`, {
    headers: { Authorization: `Bearer ${ownerToken}` },
  });
  expect(revoked.status()).toBe(200);
  await expect
    .poll(async () => {
      await page.goto("/console/tenant/users");
      return new URL(page.url()).pathname;
    }, { timeout: 5000 })
    .toBe("/console/signin");
});
