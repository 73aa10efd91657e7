// IF-AUDIT-CONSOLE: an auditor's journey in a real browser. An app reports audit and billing
// events for a tenant (seeded through the JSON API as an operator and the app's key), then the
// auditor filters the events by tenant, action and outcome, downloads the CSV and reads it,
// verifies the hash chain, and looks at the tenant's usage per day. Every page is checked with
// axe and screenshotted, and nothing is requested from another origin.

import fs from "node:fs";
import { parseCsv } from "../harness/csv.mjs";
import { expect, expectAccessible, test } from "./fixtures.mjs";

/** Signs in at the IdP as `account` from the console's sign-in page. */
async function signIn(page, edgeplane, origins, account) {
  await page.goto("/console/signin");
  await origins.during("sign-in", edgeplane.idp.origin, async () => {
    await page.getByRole("link", { name: "Sign in as operator or auditor" }).click();
    await expect(page).toHaveURL((url) => url.origin === edgeplane.idp.origin);
    await page.getByLabel("Email").fill(account.email);
    await page.getByLabel("Password").fill(account.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page).toHaveURL((url) => url.origin === edgeplane.baseURL);
  });
  await expect(page.getByRole("heading", { name: "Tenants", level: 1 })).toBeVisible();
}

/** A JSON API call that must answer `status`; returns its body. */
async function api(request, method, path, token, data, status) {
  const resp = await request.fetch(path, {
    method,
    headers: { Authorization: `Bearer ${token}` },
    data,
  });
  const text = await resp.text();
  expect(resp.status(), `${method} ${path}: ${text}`).toBe(status);
  return text ? JSON.parse(text) : null;
}

/**
 * An app and a tenant it is enabled for, a tenant-bound key of the app with `log:write` and
 * `bill:write`, and the events the app reports with it.
 */
async function seed(request, edgeplane, suffix) {
  const operator = await edgeplane.operatorToken("operator");
  const app = await api(request, "POST", "/v1/apps", operator, { name: `Docs ${suffix}` }, 201);
  const domain = `audited-${suffix}`;
  const provisioned = await api(
    request,
    "POST",
    "/v1/tenants",
    operator,
    { name: `Audited ${suffix}`, domain, plan: "pro", owner_email: `owner@${domain}.example`, apps: [app.id] },
    201,
  );
  const tenantId = provisioned.tenant.id;
  const issued = await api(
    request,
    "POST",
    `/v1/apps/${app.id}/keys`,
    operator,
    { scopes: ["log:write", "bill:write"], tenant_id: tenantId },
    201,
  );
  const at = (offsetSeconds) => new Date(Date.now() - 60_000 + offsetSeconds * 1000).toISOString();
  const audit = [
    ["ana", "doc.read", "report-1", "success"],
    ["bo", "doc.delete", "report-2", "failure"],
    ["ana", "doc.read", "report-3", "success"],
    ["bo", "doc.share", "report-4", "success"],
  ].map(([actor, type, resource, outcome], i) => ({
    id: `ev-${suffix}-${i}`,
    timestamp: at(i),
    actor_id: actor,
    type,
    resource_id: resource,
    outcome,
    ip: "192.0.2.10",
  }));
  await api(request, "POST", "/v1/audit/events", issued.secret, audit, 202);
  const billing = [
    { id: `b-${suffix}-1`, type: "api.call", quantity: 7, timestamp: at(0) },
    { id: `b-${suffix}-2`, type: "api.call", quantity: 5, timestamp: at(0) },
  ];
  await api(request, "POST", "/v1/billing/events", issued.secret, billing, 202);
  // The scheduled jobs archive the streams, so the chain check covers an archive and its anchor.
  const run = await request.post("/internal/scheduled", {
    headers: { Authorization: `Bearer ${edgeplane.cronSecret}` },
    data: {},
  });
  expect(run.status(), await run.text()).toBe(200);
  return { tenantId, name: `Audited ${suffix}` };
}

test("an auditor filters audit events, downloads them, verifies the chain and reads usage", async ({
  page,
  request,
  edgeplane,
  accounts,
  origins,
  saveScreenshot,
}) => {
  const suffix = Date.now().toString(36);
  const { tenantId, name } = await seed(request, edgeplane, suffix);
  await signIn(page, edgeplane, origins, accounts.auditor);

  // The events of the tenant and one action.
  await page.getByRole("link", { name: "Audit", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Audit events", level: 1 })).toBeVisible();
  await page.getByLabel("Tenant", { exact: true }).selectOption(tenantId);
  await page.getByLabel("Action").fill("doc.read");
  await page.getByRole("button", { name: "Filter" }).click();
  const table = page.locator("#audit-events");
  await expect(table.locator("tbody tr")).toHaveCount(2);
  await expect(table).toContainText("report-1");
  await expect(table).toContainText("report-3");
  await expect(table).not.toContainText("report-2");
  await expect(table.locator("tbody tr").first()).toContainText(name);
  await expectAccessible(page);
  await saveScreenshot("auditor-events");

  // The CSV of the tenant and action, as the API exports it.
  const downloading = page.waitForEvent("download");
  await page.getByRole("link", { name: "Download CSV" }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toBe(`audit-${tenantId}-start-now.csv`);
  const [header, ...rows] = parseCsv(fs.readFileSync(await download.path(), "utf8"));
  expect(header.slice(0, 9)).toEqual([
    "tenant_id",
    "seq",
    "event_id",
    "timestamp",
    "received_at",
    "actor_id",
    "action",
    "resource_id",
    "outcome",
  ]);
  const col = (n) => header.indexOf(n);
  expect(rows.map((r) => [r[col("tenant_id")], r[col("actor_id")], r[col("action")], r[col("resource_id")]])).toEqual([
    [tenantId, "ana", "doc.read", "report-1"],
    [tenantId, "ana", "doc.read", "report-3"],
  ]);

  // The console's own filters: a failure by bo, whatever the action.
  await page.getByLabel("Action").fill("");
  await page.getByLabel("Actor id").fill("bo");
  await page.getByLabel("Outcome").selectOption("failure");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(table.locator("tbody tr")).toHaveCount(1);
  await expect(table).toContainText("report-2");
  await expect(table).toContainText("failure");

  // The hash chain of the tenant's stream holds.
  await page.getByRole("link", { name: "Verify the chain" }).click();
  await expect(page.getByRole("heading", { name: "Chain verification", level: 1 })).toBeVisible();
  await expect(page.locator("#verdict")).toContainText("Verified.");
  await expect(page.locator("#verdict")).toContainText("records rehashed");
  await expectAccessible(page);
  await saveScreenshot("auditor-verify");

  // The tenant's usage per day: a table, a chart and its CSV.
  await page.getByRole("link", { name: "Billing usage" }).click();
  await expect(page.getByRole("heading", { name: "Billing usage", level: 1 })).toBeVisible();
  await page.getByLabel("Tenant", { exact: true }).selectOption(tenantId);
  await page.getByRole("button", { name: "Show usage" }).click();
  await expect(page.locator("#usage tbody tr")).toHaveCount(1);
  await expect(page.locator("#usage tbody tr")).toContainText("api.call");
  await expect(page.locator("#usage tbody tr")).toContainText("12");
  await expect(page.getByRole("img", { name: /^api\.call: quantity per UTC day/ })).toBeVisible();
  await expectAccessible(page);
  await saveScreenshot("auditor-usage");
  const usageDownload = page.waitForEvent("download");
  await page.getByRole("link", { name: "Download usage CSV" }).click();
  const usageCsv = parseCsv(fs.readFileSync(await (await usageDownload).path(), "utf8"));
  expect(usageCsv[0]).toEqual(["day", "type", "quantity", "events"]);
  expect(usageCsv.slice(1).map((r) => r.slice(1))).toEqual([["api.call", "12", "2"]]);
});
