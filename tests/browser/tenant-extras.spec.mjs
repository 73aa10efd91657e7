// IF-TENANT-CONSOLE, the owner's own pages beyond users and policy: the subscription's billing
// usage per day (reported by an app with a `bill:write` key, seeded through the JSON API) as a
// table, a chart and a CSV; and the owner's passkeys on the security page, added with Chrome's
// virtual authenticator through the console's script, used at the next sign-in, and removed.
//
// Browsers refuse WebAuthn on an IP address, so this file's stack is served as `localhost`
// (its own worker and stack: see fixtures.mjs).

import fs from "node:fs";
import { expect, expectAccessible, test } from "./fixtures.mjs";
import { PASSWORD, accept, provision, signIn, signOut } from "./tenant-helpers.mjs";

test.use({ edgeplaneHost: "localhost" });

/** A JSON API call that must answer `status`; returns its body. */
async function api(request, method, path, token, data, status) {
  const resp = await request.fetch(path, { method, headers: { Authorization: `Bearer ${token}` }, data });
  const text = await resp.text();
  expect(resp.status(), `${method} ${path}: ${text}`).toBe(status);
  return text ? JSON.parse(text) : null;
}

/** A tenant with an app enabled for it, and the app's tenant-bound `bill:write` key. */
async function tenantWithBillingApp(request, edgeplane) {
  const operator = await edgeplane.operatorToken("operator");
  const app = await api(request, "POST", "/v1/apps", operator, { name: `Billing ${Date.now().toString(36)}` }, 201);
  const t = await provision(request, edgeplane, "use", [app.id]);
  const key = await api(
    request,
    "POST",
    `/v1/apps/${app.id}/keys`,
    operator,
    { scopes: ["bill:write"], tenant_id: t.id },
    201,
  );
  return { ...t, key: key.secret };
}

/** The records of a CSV text without quoted cells, as arrays of cells. */
function csvRows(text) {
  return text
    .split("\r\n")
    .filter((line) => line !== "")
    .map((line) => line.split(","));
}

test("the owner sees the tenant's billing usage per day as a table, a chart and a CSV", async ({
  page,
  request,
  edgeplane,
  origins,
  saveScreenshot,
}) => {
  const t = await tenantWithBillingApp(request, edgeplane);
  const at = new Date(Date.now() - 60_000).toISOString();
  const events = [
    { id: `u-${t.id}-1`, type: "api.call", quantity: 7, timestamp: at },
    { id: `u-${t.id}-2`, type: "api.call", quantity: 5, timestamp: at },
  ];
  await api(request, "POST", "/v1/billing/events", t.key, events, 202);
  await accept(page, t.link, PASSWORD);
  await signIn(page, t.domain, t.owner, PASSWORD);

  await page.getByRole("link", { name: "Subscription" }).click();
  await expect(page.getByRole("heading", { name: "Usage per day", level: 2 })).toBeVisible();
  const rows = page.locator("#usage tbody tr");
  await expect(rows).toHaveCount(1);
  await expect(rows).toContainText("api.call");
  await expect(rows.locator("td").nth(2)).toHaveText("12");
  await expect(rows.locator("td").nth(3)).toHaveText("2");
  const chart = page.getByRole("img", { name: /^api\.call: quantity per UTC day from .* 12 in all$/ });
  await expect(chart).toBeVisible();
  // The last 30 days, today included: a bar for the one day with usage.
  await expect(chart.locator("rect")).toHaveCount(1);
  await expectAccessible(page);
  await saveScreenshot("tenant-usage");

  const downloading = page.waitForEvent("download");
  await page.getByRole("link", { name: "Download usage CSV" }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toMatch(/^usage-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv$/);
  const csv = csvRows(fs.readFileSync(await download.path(), "utf8"));
  expect(csv[0]).toEqual(["day", "type", "quantity", "events"]);
  expect(csv.slice(1).map((r) => r.slice(1))).toEqual([["api.call", "12", "2"]]);

  // A period before the events: nothing.
  await page.getByLabel("From (UTC day)").fill("2020-01-01");
  await page.getByLabel("To (UTC day, included)").fill("2020-01-31");
  await page.getByRole("button", { name: "Show usage" }).click();
  await expect(page.locator("#no-usage")).toBeVisible();
  origins.expectNoOtherOrigin();
});

test("the owner adds a passkey with the browser, signs in with it, and removes it", async ({
  page,
  request,
  edgeplane,
  saveScreenshot,
}) => {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
    },
  });
  const t = await provision(request, edgeplane, "pk");
  await accept(page, t.link, PASSWORD);
  await signIn(page, t.domain, t.owner, PASSWORD);

  await page.getByRole("link", { name: "Security" }).click();
  await expect(page.locator("#no-passkeys")).toBeVisible();
  await page.getByRole("button", { name: "Add a passkey" }).click();
  await expect(page.getByRole("heading", { name: "Add a passkey", level: 1 })).toBeVisible();
  await expect(page.locator("#passkey-note")).toHaveText("Press the button, then follow your browser's prompt.");
  await expectAccessible(page);
  await saveScreenshot("tenant-passkey-add");
  await page.getByLabel("Name of the passkey (optional)").fill("Test laptop");
  await page.getByRole("button", { name: "Create the passkey" }).click();

  await expect(page.getByText("Passkey added")).toBeVisible();
  await expect(page.locator("#passkey-list tbody tr")).toHaveCount(1);
  await expect(page.locator("#passkey-list")).toContainText("Test laptop");
  const held = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  expect(held.credentials).toHaveLength(1);
  await expectAccessible(page);
  await saveScreenshot("tenant-passkeys");

  // The passkey is a second factor now: the next sign-in asks for it, and the browser answers.
  await signOut(page);
  await signIn(page, t.domain, t.owner, PASSWORD, undefined, async (p) => {
    await p.getByRole("button", { name: "Use a passkey" }).click();
  });

  // Removing it asks first.
  await page.getByRole("link", { name: "Security" }).click();
  await expect(page.locator("#passkey-list")).toContainText("Test laptop");
  await page.getByRole("link", { name: "Remove Test laptop" }).click();
  await expect(page.getByRole("heading", { name: "Remove a passkey", level: 1 })).toBeVisible();
  await expectAccessible(page);
  await page.getByRole("button", { name: "Remove the passkey" }).click();
  await expect(page.getByText("Passkey removed")).toBeVisible();
  await expect(page.locator("#no-passkeys")).toBeVisible();
  await expectAccessible(page);
});
