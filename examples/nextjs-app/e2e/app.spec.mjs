// The example app against a real Edgeplane (the built worker in workerd, tests/browser/harness.mjs)
// in Chromium: a tenant owner signs in through Edgeplane's universal login page; the orders page
// follows a change of its flag within Edgeplane's freshness bound; an order placed through the
// page's form reaches the billing export and the audit CSV, each exactly once; sign-out ends the
// session at Edgeplane too.

import fs from "node:fs";
import path from "node:path";

import { expect, test as consoles } from "../../../tests/browser/fixtures.mjs";
import { freePort, startStack } from "../../../tests/browser/harness.mjs";
import { parseCsv } from "../../../tests/harness/csv.mjs";
import { call, seedApp } from "../../../tests/harness/seed.mjs";
import { appEnv, appRedirectUris, FLAG_KEY, registerAppUrls, setFlag } from "../scripts/edgeplane-setup.mjs";
import { LOG_DIR, startApp } from "./app-server.mjs";

/** README "Freshness at the edge": a flag change is served within 1 s in one location. */
const FRESHNESS_BOUND_MS = 1_000;
/** How long the page may take to show it: the bound, plus page loads on a shared machine. */
const FOLLOW_WITHIN_MS = 2 * FRESHNESS_BOUND_MS;

const test = consoles.extend({
  // Edgeplane as the consoles' tests start it, with this test's logs apart from theirs.
  edgeplane: [
    async ({ runtime }, use) => {
      const stack = await startStack(runtime, { logDir: LOG_DIR });
      try {
        await use(stack);
      } finally {
        await stack.stop();
      }
    },
    { scope: "worker", timeout: 120_000 },
  ],
  // The app, seeded in Edgeplane and running beside it, once per test worker.
  app: [
    async ({ edgeplane }, use) => {
      const operatorToken = await edgeplane.operatorToken("operator");
      const port = await freePort();
      const appUrl = `http://127.0.0.1:${port}`;
      const seeded = await seedApp({
        baseUrl: edgeplane.baseURL,
        operatorToken,
        appName: "Order service",
        redirectUris: appRedirectUris(appUrl),
        allowedOrigins: [appUrl],
        tenantDomain: "acme-orders",
      });
      await setFlag({ baseUrl: edgeplane.baseURL, operatorToken, tenantId: seeded.tenantId, value: false });
      const logFile = path.join(LOG_DIR, "nextjs-app.log");
      const server = await startApp({
        port,
        logFile,
        env: appEnv({ baseUrl: edgeplane.baseURL, appId: seeded.appId, apiKey: seeded.apiKey, appUrl }),
      });
      try {
        await use({ ...seeded, appUrl, logFile });
      } finally {
        await server.stop();
      }
    },
    { scope: "worker", timeout: 120_000 },
  ],
  // Pages of the test are the app's.
  baseURL: async ({ app }, use) => {
    await use(app.appUrl);
  },
});

/** Every billing event of the tenant, through the export's pages (the app's key holds bill:read). */
async function billingExport(baseUrl, apiKey, tenantId) {
  const items = [];
  let cursor;
  for (;;) {
    const url = new URL("/v1/billing/events", baseUrl);
    url.searchParams.set("tenant", tenantId);
    url.searchParams.set("limit", "1000");
    if (cursor) url.searchParams.set("cursor", cursor);
    const res = await fetch(url, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(res.status, await res.clone().text()).toBe(200);
    const page = await res.json();
    items.push(...page.items);
    if (!page.next_cursor || page.items.length === 0) return items;
    cursor = page.next_cursor;
  }
}

/** The tenant's audit CSV rows of `action` as objects keyed by the header (auditor's token). */
async function auditRows(baseUrl, auditorToken, tenantId, action) {
  const url = new URL("/v1/audit/export.csv", baseUrl);
  url.searchParams.set("tenant", tenantId);
  url.searchParams.set("action", action);
  const res = await fetch(url, { headers: { authorization: `Bearer ${auditorToken}` } });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  const [header, ...rows] = parseCsv(text);
  return rows.map((cells) => Object.fromEntries(header.map((name, i) => [name, cells[i]])));
}

/** Edgeplane's login page, from the organization to the password, as the tenant's owner. */
async function signInAtEdgeplane(page, edgeplane, app) {
  await expect(page).toHaveURL((url) => url.origin === edgeplane.baseURL && url.pathname === "/oauth/authorize");
  await page.getByLabel("Your organization's domain").fill(app.tenantDomain);
  await page.getByRole("button", { name: "Continue", exact: true }).click();
  await page.getByLabel("Email").fill(app.ownerEmail);
  await page.getByLabel("Password").fill(app.ownerPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** Reloads `page` until `check` passes, for at most `withinMs`; resolves to the time it took. */
async function followsWithin(page, withinMs, check) {
  const started = Date.now();
  await expect(async () => {
    await page.reload();
    await check();
  }).toPass({ timeout: withinMs, intervals: [50, 100, 100, 200] });
  return Date.now() - started;
}

test("a tenant owner signs in through Edgeplane, the orders page follows its flag, and an order is billed and audited", async ({
  page,
  edgeplane,
  app,
}, testInfo) => {
  // 1. Sign-in through Edgeplane's universal login page, typed into.
  await page.goto("/");
  await page.getByRole("link", { name: "Sign in with Edgeplane" }).click();
  await signInAtEdgeplane(page, edgeplane, app);
  await expect(page).toHaveURL(`${app.appUrl}/`);
  // Tenant and role, as the verified access token says.
  await expect(page.getByTestId("tenant-id")).toHaveText(app.tenantId);
  await expect(page.getByTestId("role")).toHaveText("owner");
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
  const userId = (await page.getByTestId("user-id").textContent())?.trim();
  expect(userId).toMatch(/^\S+$/);
  // A refresh (what an expired access token leads to) keeps the user signed in, same tenant.
  // (Straight back to the page: a refused refresh would go to sign in again.)
  const refreshed = await page.request.get("/auth/refresh?to=%2F", { maxRedirects: 0 });
  expect(refreshed.status()).toBe(303);
  expect(refreshed.headers().location).toBe(`${app.appUrl}/`);
  await page.reload();
  await expect(page.getByTestId("tenant-id")).toHaveText(app.tenantId);

  // 2. The flag: off as seeded (state A), then on through the operator API, then off again.
  await page.getByRole("link", { name: "Go to your orders" }).click();
  await expect(page.getByRole("heading", { name: "Orders", level: 1 })).toBeVisible();
  const banner = page.getByTestId("orders-ui");
  await expect(banner).toHaveText("Classic orders UI.");
  await expect(page.getByText(/could not be read/)).toHaveCount(0);

  const operatorToken = await edgeplane.operatorToken("operator");
  const flip = (value) => setFlag({ baseUrl: edgeplane.baseURL, operatorToken, tenantId: app.tenantId, key: FLAG_KEY, value });
  await flip(true);
  const onAfter = await followsWithin(page, FOLLOW_WITHIN_MS, () =>
    expect(banner).toContainText("New orders UI", { timeout: 200 }),
  );
  await expect(page.getByRole("list", { name: "Orders" }).or(page.getByText("No orders yet."))).toBeVisible();
  testInfo.annotations.push({ type: "flag on followed in", description: `${onAfter} ms` });
  console.log(`flag on: the orders page followed in ${onAfter} ms`);

  // 3. An order through the form: one billing event, one audit event.
  await page.getByLabel("Product").selectOption({ label: "Seat licence" });
  await page.getByLabel("Quantity").fill("3");
  await page.getByRole("button", { name: "Place order" }).click();
  const placed = page.getByRole("status").filter({ hasText: "placed" });
  await expect(placed).toBeVisible();
  const orderId = (await placed.locator("code").textContent())?.trim();
  expect(orderId).toMatch(/^ord_[0-9a-f-]{36}$/);
  await expect(page.getByRole("list", { name: "Orders" }).getByText("3 × Seat licence")).toBeVisible();

  const eventId = `order.placed:${orderId}`;
  await expect
    .poll(async () => (await billingExport(edgeplane.baseURL, app.apiKey, app.tenantId)).filter((e) => e.id === eventId), {
      message: `billing event ${eventId} in the export`,
      timeout: 10_000,
    })
    .toHaveLength(1);
  const [billed] = (await billingExport(edgeplane.baseURL, app.apiKey, app.tenantId)).filter((e) => e.id === eventId);
  expect(billed).toMatchObject({ type: "order.placed", quantity: 3, metadata: { order_id: orderId } });

  const auditorToken = await edgeplane.operatorToken("auditor");
  await expect
    .poll(async () => (await auditRows(edgeplane.baseURL, auditorToken, app.tenantId, "order.placed")).filter((r) => r.event_id === eventId), {
      message: `audit event ${eventId} in the CSV`,
      timeout: 10_000,
    })
    .toHaveLength(1);
  const [audited] = (await auditRows(edgeplane.baseURL, auditorToken, app.tenantId, "order.placed")).filter((r) => r.event_id === eventId);
  expect(audited).toMatchObject({
    tenant_id: app.tenantId,
    actor_id: userId,
    action: "order.placed",
    resource_id: `order:${orderId}`,
    outcome: "success",
    app_id: app.appId,
  });

  // The page's own read of Edgeplane (billing usage, the typed client) counts the order.
  await page.reload();
  await expect(page.getByTestId("billed")).toHaveText(/Billed this month: 3 items in 1 orders/);

  // Cancelling is audited too.
  await page.getByRole("button", { name: `Cancel order ${orderId}` }).click();
  await expect(page.getByRole("status").filter({ hasText: "cancelled" })).toBeVisible();
  await expect
    .poll(async () => (await auditRows(edgeplane.baseURL, auditorToken, app.tenantId, "order.cancelled")).map((r) => r.resource_id), {
      message: "the cancellation in the audit CSV",
      timeout: 10_000,
    })
    .toEqual([`order:${orderId}`]);

  // The flag back off: the classic table, as fast.
  await flip(false);
  const offAfter = await followsWithin(page, FOLLOW_WITHIN_MS, () =>
    expect(banner).toHaveText("Classic orders UI.", { timeout: 200 }),
  );
  await expect(page.getByRole("table", { name: "Orders" })).toBeVisible();
  testInfo.annotations.push({ type: "flag off followed in", description: `${offAfter} ms` });
  console.log(`flag off: the orders page followed in ${offAfter} ms`);

  // 4. Sign-out ends the app's session and Edgeplane's, and comes back to the app's home page.
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(`${app.appUrl}/`);
  await expect(page.getByRole("link", { name: "Sign in with Edgeplane" })).toBeVisible();
  await page.goto("/orders");
  await expect(page).toHaveURL((url) => url.origin === edgeplane.baseURL && url.pathname === "/oauth/authorize");
  await expect(page.getByLabel("Your organization's domain")).toBeVisible();
});

test("Edgeplane's refusals show on the page as its problem details", async ({ page, edgeplane, app }) => {
  // The same app with a key that may neither read billing nor write audit events: a second
  // server of the build, registered on the app by the helper make dev-app uses.
  const operatorToken = await edgeplane.operatorToken("operator");
  const narrow = await call(edgeplane.baseURL, "POST", `/v1/apps/${app.appId}/keys`, {
    token: operatorToken,
    body: { name: "flags and billing writes only", scopes: ["flags:read", "bill:write"] },
    status: 201,
  });
  const port = await freePort();
  const appUrl = `http://127.0.0.1:${port}`;
  await registerAppUrls({ baseUrl: edgeplane.baseURL, operatorToken, appId: app.appId, appUrl });
  const server = await startApp({
    port,
    logFile: path.join(LOG_DIR, "nextjs-app-narrow-key.log"),
    env: appEnv({ baseUrl: edgeplane.baseURL, appId: app.appId, apiKey: narrow.secret, appUrl }),
  });
  try {
    await page.goto(`${appUrl}/orders`);
    await signInAtEdgeplane(page, edgeplane, app);
    await expect(page).toHaveURL(`${appUrl}/orders`);

    // The page's own read (GET /v1/billing/usage) refused: its problem, with the request id.
    const usage = page.getByRole("alert", { name: "Billing usage unavailable" });
    await expect(usage).toBeVisible();
    await expect(usage).toContainText("(403)");
    await expect(usage).toContainText("bill:read");
    await expect(usage).toContainText("https://edgeplane.dev/problems/access-denied");
    await expect(usage).toContainText(/Request id\s*[0-9a-f-]{36}/);

    // An order's audit event refused by Edgeplane: the reporter's drop, with the problem.
    await page.getByLabel("Quantity").fill("2");
    await page.getByRole("button", { name: "Place order" }).click();
    await expect(page.getByRole("status").filter({ hasText: "placed" })).toBeVisible();
    const dropped = page.getByRole("alert", { name: /did not take 1 audit event \(rejected/ });
    await expect(async () => {
      await page.reload();
      await expect(dropped).toBeVisible({ timeout: 200 });
    }).toPass({ timeout: 10_000 });
    await expect(dropped).toContainText("(403)");
    await expect(dropped).toContainText("log:write");
    // The server's log says it too, without the user's id or address.
    const log = fs.readFileSync(path.join(LOG_DIR, "nextjs-app-narrow-key.log"), "utf8");
    expect(log).toContain('"msg":"audit events dropped"');
    expect(log).not.toContain(app.ownerEmail);
  } finally {
    await server.stop();
  }
});
