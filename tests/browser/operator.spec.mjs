// IF-OPS-CONSOLE: an operator's journey through the console, start to end, in a real browser:
// register an app and issue it a key, provision a tenant with the app, set a flag with a
// targeting rule and watch the OFREP answer the app gets change, preview an evaluation, revoke
// the key and see the app refused. Every page is checked with axe and screenshotted; an auditor
// sees the pages without their forms and a forged form is refused.

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

/** The app's OFREP answer for one flag, as a managed app would ask. */
async function evaluate(request, key, tenantId, context) {
  const resp = await request.post("/ofrep/v1/evaluate/flags/new-checkout", {
    headers: { "X-API-Key": key },
    data: { context: { tenantId, targetingKey: "user-1", ...context } },
  });
  const body = await resp.json().catch(() => null);
  if (process.env.DEBUG_OFREP) console.log(resp.status(), JSON.stringify(body));
  return { status: resp.status(), body: resp.status() === 200 ? body : null };
}

test("an operator registers an app, provisions a tenant, targets a flag and revokes a key", async ({
  page,
  request,
  edgeplane,
  accounts,
  origins,
  saveScreenshot,
}) => {
  const suffix = Date.now().toString(36);
  await signIn(page, edgeplane, origins, accounts.operator);
  await expectAccessible(page);

  // An app and a key for it: the secret is shown once.
  await page.getByRole("link", { name: "Apps and keys" }).click();
  await page.getByLabel("Name", { exact: true }).fill(`Shop ${suffix}`);
  await page.getByLabel("Redirect URIs (one per line)").fill("https://shop.example/callback");
  await page.getByRole("button", { name: "Register app" }).click();
  await expect(page.getByRole("heading", { name: `Shop ${suffix}`, level: 1 })).toBeVisible();
  const appId = (await page.locator("dl.facts code").first().textContent()).trim();
  await page.getByLabel("flags:read").check();
  await page.getByRole("button", { name: "Issue key" }).click();
  const key = (await page.locator("#issued-key").textContent()).trim();
  expect(key).toMatch(/^ep_/);
  await expect(page.getByText("shown this once")).toBeVisible();
  await expectAccessible(page);
  await saveScreenshot("operator-app-key");

  // A tenant with the app.
  await page.getByRole("link", { name: "Tenants" }).click();
  await page.getByRole("link", { name: "New tenant" }).click();
  await expectAccessible(page);
  await page.getByLabel("Name", { exact: true }).fill(`Acme ${suffix}`);
  await page.getByLabel("Domain").fill(`acme-${suffix}`);
  await page.getByLabel("Plan").selectOption("pro");
  await page.getByLabel("Owner's email").fill(`owner@acme-${suffix}.example`);
  await page.getByLabel("Apps to enable").fill(appId);
  await page.getByRole("button", { name: "Create tenant" }).click();
  await expect(page.getByRole("heading", { name: `Acme ${suffix}`, level: 1 })).toBeVisible();
  await expect(page.locator("code.secret")).toContainText("/console/account/invitation?token=");
  const tenantId = (await page.locator("dl.facts dd code").first().textContent()).trim();
  await expectAccessible(page);
  await saveScreenshot("operator-tenant");

  // A rule the API refuses shows its field path next to the field; then a good one.
  await page.getByLabel("Key", { exact: true }).fill("new-checkout");
  await page.getByLabel("Default value").fill("false");
  const rules = page.getByLabel("Rules as JSON");
  await rules.fill('[{"conditions":[{"attribute":"email","op":"ends_with","values":[]}],"value":true}]');
  await page.getByRole("button", { name: "Save flag" }).click();
  await expect(page.locator("#f-rules-error")).toContainText("rules[0].conditions[0].values");
  await expectAccessible(page);
  const before = await evaluate(request, key, tenantId, { email: "ana@acme.example" });
  expect(before.status).toBe(404); // FLAG_NOT_FOUND: nothing was saved

  await rules.fill(
    '[{"name":"staff","conditions":[{"attribute":"email","op":"ends_with","values":["@acme.example"]}],"value":true}]',
  );
  await page.getByRole("button", { name: "Save flag" }).click();
  await expect(page.getByText("Flag saved")).toBeVisible();
  await expect(page.getByRole("heading", { name: "Flag new-checkout" })).toBeVisible();

  // The app sees the rule: staff get true, everyone else the default.
  await expect
    .poll(async () => (await evaluate(request, key, tenantId, { email: "ana@acme.example" })).body?.value)
    .toBe(true);
  expect((await evaluate(request, key, tenantId, { email: "eve@other.example" })).body.value).toBe(false);

  // The preview evaluates the stored flag for a typed context.
  await page.getByLabel("Evaluation context").fill('{"targetingKey":"u1","email":"bo@acme.example"}');
  await page.getByRole("button", { name: "Evaluate" }).click();
  await expect(page.locator("#preview-value")).toHaveText("true");
  await expect(page.getByText("TARGETING_MATCH")).toBeVisible();
  await expectAccessible(page);
  await saveScreenshot("operator-flag");

  // The rule list: a rule the API refuses shows its error at the field; a rollout is added.
  const addRule = page.getByRole("region", { name: "Rules" });
  await addRule.getByLabel("Attribute 1").fill("plan");
  await addRule.getByLabel("Test 1").selectOption("in");
  await addRule.getByLabel("Serve this value").fill("true");
  await addRule.getByRole("button", { name: "Add rule" }).click();
  await expect(page.getByRole("region", { name: "Rules" })).toContainText("conditions[0].values");
  await expectAccessible(page);
  const form = page.getByRole("region", { name: "Rules" });
  await form.getByLabel("Attribute 1").fill("");
  await form.getByLabel("Serve this value").fill("");
  await form.getByLabel("Variant 1").fill("on");
  await form.getByLabel("Its value 1 (JSON)").fill("true");
  await form.getByLabel("Weight 1").fill("20");
  await form.getByLabel("Variant 2").fill("off");
  await form.getByLabel("Its value 2 (JSON)").fill("false");
  await form.getByLabel("Weight 2").fill("80");
  await form.getByRole("button", { name: "Add rule" }).click();
  await expect(page.getByText("Flag saved")).toBeVisible();
  await expect(page.getByRole("region", { name: "Rules" }).getByRole("listitem").nth(1)).toContainText("rollout on 20");
  await page.getByRole("button", { name: "Remove rule 2" }).click();
  await expect(page.getByRole("region", { name: "Rules" }).getByRole("listitem")).toHaveCount(1);

  // Turning the flag off changes what the app gets within the freshness bound.
  await page.getByLabel("Enabled").uncheck();
  await page.getByRole("button", { name: "Save flag" }).click();
  await expect(page.getByText("Flag saved")).toBeVisible();
  await expect
    .poll(async () => (await evaluate(request, key, tenantId, { email: "ana@acme.example" })).body?.reason, {
      timeout: 3000,
    })
    .toBe("DISABLED");

  // Revoking the key refuses the app.
  await page.getByRole("link", { name: "Apps and keys" }).click();
  await page.getByRole("link", { name: `Shop ${suffix}` }).click();
  await page.getByRole("button", { name: /^Revoke / }).click();
  await expect(page.getByText("Key revoked.")).toBeVisible();
  await expect.poll(async () => (await evaluate(request, key, tenantId, {})).status, { timeout: 3000 }).toBe(401);

  // The app's own health is checked (here: Edgeplane's liveness route stands in for it), and a
  // scheduled run checks it and runs the synthetic journey (NFR-MON-003).
  const op = await edgeplane.operatorToken("operator");
  const hc = await request.put(`/v1/apps/${appId}/health-check`, {
    headers: { Authorization: `Bearer ${op}` },
    data: { url: `${edgeplane.baseURL}/health` },
  });
  expect(hc.status()).toBe(200);
  const run = await request.post("/internal/scheduled", {
    headers: { Authorization: `Bearer ${edgeplane.cronSecret}` },
    data: {},
  });
  expect(run.status()).toBe(200);

  // System health lists every dependency, the key services' figures, the latest journey, the
  // managed apps' health and the alerts.
  await page.getByRole("link", { name: "System health" }).click();
  for (const port of ["sql", "kv", "event log", "blobs"]) {
    await expect(page.getByRole("cell", { name: new RegExp(`^${port} \\(`) })).toBeVisible();
  }
  await expect(page.getByRole("heading", { name: "Key services" })).toBeVisible();
  const services = page.getByRole("table").filter({ hasText: "Last 5 minutes" });
  for (const service of ["sign in", "introspection", "ofrep", "ingestion", "admin"]) {
    await expect(services.getByRole("cell", { name: service, exact: true })).toBeVisible();
  }
  await expect(page.getByRole("heading", { name: "Synthetic journey" })).toBeVisible();
  await expect(page.getByText(/^Latest run: passed/)).toBeVisible();
  const steps = page.getByRole("table").filter({ hasText: "Each step of the latest run" });
  for (const step of ["sign in", "second factor", "introspect", "evaluate flag", "ingest", "read back"]) {
    const row = steps.getByRole("row").filter({ has: page.getByRole("cell", { name: step, exact: true }) });
    await expect(row.getByText("passed")).toBeVisible();
    await expect(row.getByRole("cell", { name: /^\d+ ms$/ })).toBeVisible();
  }
  await expect(page.getByRole("heading", { name: "Managed apps" })).toBeVisible();
  const appRow = page.getByRole("row").filter({ has: page.getByRole("cell", { name: `Shop ${suffix}`, exact: true }) });
  await expect(appRow.getByText("green", { exact: true })).toBeVisible();
  await expect(appRow.getByRole("cell", { name: /^\d+ ms$/ })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Alerts" })).toBeVisible();
  await expectAccessible(page);
  await saveScreenshot("operator-health");
});

test("an auditor sees the console without its forms, and a forged form changes nothing", async ({
  page,
  request,
  edgeplane,
  accounts,
  origins,
}) => {
  await signIn(page, edgeplane, origins, accounts.auditor);
  await expect(page.getByRole("link", { name: "New tenant" })).toHaveCount(0);
  await page.getByRole("link", { name: "Apps and keys" }).click();
  await expect(page.getByRole("button", { name: "Register app" })).toHaveCount(0);

  // The server decides, not the page: the auditor's own session, with its CSRF token, posting
  // the operator's form is refused by the API and nothing is created.
  const csrf = await page.locator('input[name="csrf"]').first().getAttribute("value");
  const posted = await page.request.post("/console/tenants", {
    form: { csrf, once: "x", name: "Forged", domain: "forged", plan: "free", owner_email: "o@forged.example" },
    headers: { Origin: edgeplane.baseURL },
  });
  expect(posted.status()).toBe(403);
  // Without the CSRF token the console refuses before asking the API.
  const noCsrf = await page.request.post("/console/signout", { form: {}, headers: { Origin: edgeplane.baseURL } });
  expect(noCsrf.status()).toBe(403);
  const listing = await request.get("/v1/tenants?q=forged", {
    headers: { Authorization: `Bearer ${await edgeplane.operatorToken("operator")}` },
  });
  expect((await listing.json()).items).toEqual([]);
});

test("plan defaults reach a new tenant, apps are linked per tenant, signing keys are listed", async ({
  page,
  request,
  edgeplane,
  accounts,
  origins,
  saveScreenshot,
}) => {
  const suffix = Date.now().toString(36);
  const op = { Authorization: `Bearer ${await edgeplane.operatorToken("operator")}` };
  await signIn(page, edgeplane, origins, accounts.operator);

  await page.getByRole("link", { name: "Plan defaults" }).click();
  const pro = page.getByRole("region", { name: "Plan pro" });
  await pro.getByLabel("Key").fill(`banner-${suffix}`);
  await pro.getByLabel("Type").selectOption("string");
  await pro.getByLabel("Value (JSON)").fill("Hello from the plan");
  await pro.getByRole("button", { name: "Save default" }).click();
  await expect(page.getByText("Default saved")).toBeVisible();
  await expect(page.getByRole("region", { name: "Plan pro" }).getByRole("cell", { name: `banner-${suffix}`, exact: true })).toBeVisible();
  await expectAccessible(page);
  await saveScreenshot("operator-plans");

  const app = await (await request.post("/v1/apps", { headers: op, data: { name: `Linked ${suffix}` } })).json();
  const tenant = await (
    await request.post("/v1/tenants", {
      headers: op,
      data: { name: `Planned ${suffix}`, domain: `planned-${suffix}`, plan: "pro", owner_email: `o@planned-${suffix}.example` },
    })
  ).json();
  await page.goto(`/console/tenants/${tenant.tenant.id}`);
  const flagRow = page.getByRole("row", { name: new RegExp(`banner-${suffix}`) });
  await expect(flagRow).toContainText("plan default");

  await page.getByLabel("Link an app").selectOption(app.id);
  await page.getByRole("button", { name: "Enable for this tenant" }).click();
  await expect(page.getByText("The app serves this tenant now.")).toBeVisible();
  await page.getByRole("button", { name: `Disable Linked ${suffix}` }).click();
  await expect(page.getByText("The app no longer serves this tenant")).toBeVisible();
  await expect(page.getByRole("button", { name: `Enable Linked ${suffix}` })).toBeVisible();
  await expectAccessible(page);

  await page.getByRole("link", { name: "Signing keys" }).click();
  await page.getByRole("button", { name: "Rotate the signing key" }).click();
  await expect(page.getByText("Rotated. New key")).toBeVisible();
  const kid = (await page.locator("p.notice code").first().textContent()).trim();
  await expect(page.getByRole("cell", { name: kid })).toBeVisible();
  await expect(page.getByRole("cell", { name: "EdDSA" }).first()).toBeVisible();
  await expectAccessible(page);
});

test("the console works by keyboard alone: navigation, a form and its submission", async ({
  page,
  edgeplane,
  accounts,
  origins,
}) => {
  await signIn(page, edgeplane, origins, accounts.operator);
  // The first Tab lands on the skip link, which moves focus to the content.
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  // Tab reaches "New tenant"; Enter follows it.
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press("Tab");
    if (await page.getByRole("link", { name: "New tenant" }).evaluate((el) => el === document.activeElement)) break;
  }
  await expect(page.getByRole("link", { name: "New tenant" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { name: "New tenant", level: 1 })).toBeVisible();
  // The form, field by field with Tab, submitted with Enter.
  const suffix = Date.now().toString(36);
  await page.getByLabel("Name", { exact: true }).focus();
  await page.keyboard.type(`Keys ${suffix}`);
  await page.keyboard.press("Tab");
  await page.keyboard.type(`keys-${suffix}`);
  await page.keyboard.press("Tab");
  await page.keyboard.press("ArrowDown"); // the plan select: free -> pro
  await page.keyboard.press("Tab");
  await page.keyboard.type(`owner@keys-${suffix}.example`);
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { name: `Keys ${suffix}`, level: 1 })).toBeVisible();
  await expect(page.locator("dl.facts")).toContainText("pro");
  // Every focusable element shows where focus is (polled: the new page's stylesheet may still
  // be on its way when the heading shows).
  await expect
    .poll(() =>
      page.evaluate(() => {
        const sheet = [...document.styleSheets].flatMap((s) => [...s.cssRules].map((r) => r.cssText)).join("\n");
        return sheet.includes(":focus-visible");
      }),
    )
    .toBe(true);
});
