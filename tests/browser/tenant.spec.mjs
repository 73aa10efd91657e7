// IF-TENANT-CONSOLE: a tenant's owner, start to end, in a real browser: accepts the mailed
// invitation, signs in through Edgeplane's universal login, turns on an authenticator app and
// signs in with it, invites an admin, disables a user and sets the password policy. Then the
// refusals: the admin cannot change the plan or SSO, another tenant's user is a 404, and a
// session whose Edgeplane session was revoked goes back to sign-in.

import { expect, expectAccessible, test } from "./fixtures.mjs";
import { PASSWORD, accept, mailedLink, provision, signIn, signOut, totp } from "./tenant-helpers.mjs";

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
