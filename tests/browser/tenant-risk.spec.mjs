// IF-TENANT-CONSOLE, adaptive authentication (NFR-SEC-006, CON-SEC-008): a sign-in from a new
// device in a new country, made through the JSON API, shows on the owner's "Sign-in risk" page;
// the owner changes the risk policy there (a bad threshold is refused next to its field), and
// removes this browser from their devices on the security page.
//
// Where the risky sign-in comes from is set the way each runtime learns it (as in
// tests/api/adaptive.rs): on workerd Miniflare's `MF-CF-Blob` header, which Miniflare turns into
// `request.cf`; on Spin `CF-IPCountry` from the trusted proxy the harness stands in for.

import { expect, expectAccessible, test } from "./fixtures.mjs";
import { PASSWORD, accept, provision, signIn } from "./tenant-helpers.mjs";

/** The headers placing a request in `country` on `runtime`. */
function placedIn(runtime, country) {
  return runtime === "spin"
    ? { "cf-ipcountry": country }
    : { "mf-cf-blob": JSON.stringify({ country, colo: "FRA", asn: 3320 }) };
}

test("the owner sees a risky sign-in, changes the risk policy and removes a device", async ({
  page,
  request,
  edgeplane,
  saveScreenshot,
}) => {
  const t = await provision(request, edgeplane, "risk");
  await accept(page, t.link, PASSWORD);
  // The first sign-in, from this browser: the baseline, and a known device.
  await signIn(page, t.domain, t.owner, PASSWORD);

  // A sign-in from a phone abroad: a new device in a new country, held for an emailed code.
  const risky = await request.post("/v1/auth/login", {
    headers: { "edgeplane-device": "phone-of-someone-else-01", ...placedIn(edgeplane.runtime, "DE") },
    data: { tenant: t.domain, email: t.owner, password: PASSWORD },
  });
  const problem = await risky.json();
  expect(risky.status(), JSON.stringify(problem)).toBe(401);
  expect(problem.factor, JSON.stringify(problem)).toBe("email_code");

  await page.getByRole("link", { name: "Sign-in risk" }).click();
  await expect(page.getByRole("heading", { name: "Sign-in risk", level: 1 })).toBeVisible();
  const rows = page.locator("#risky-sign-ins tbody tr");
  await expect(rows).toHaveCount(1);
  const cells = rows.first().locator("td");
  await expect(cells.nth(1)).toHaveText(t.owner);
  await expect(cells.nth(2)).toHaveText("Password");
  await expect(cells.nth(3)).toHaveText(/^(Medium|High)$/);
  await expect(cells.nth(4)).toHaveText("Emailed code");
  await expect(cells.nth(5)).toContainText("new device, new country");
  await expect(cells.nth(6)).toHaveText("DE");
  await expect(cells.nth(8)).toHaveText("Step-up not passed");
  await expectAccessible(page);
  await saveScreenshot("tenant-sign-in-risk");

  // A high threshold under the medium one is the API's refusal, shown at its field.
  await page.getByLabel("Medium risk requires").selectOption("second_factor");
  await page.getByLabel("High risk requires").selectOption("block");
  await page.getByLabel("High risk from score").fill("2");
  // Enter in a field submits the form (keyboard only).
  await page.getByLabel("High risk from score").press("Enter");
  await expect(page.locator("#f-high_at-error")).toContainText("must be between medium_at and 100");
  await expect(page.getByLabel("High risk requires")).toHaveValue("block");
  await expectAccessible(page);
  await page.getByLabel("High risk from score").fill("7");
  await page.getByRole("button", { name: "Save risk policy" }).click();
  await expect(page.getByText("Risk policy saved.")).toBeVisible();
  await page.reload();
  await expect(page.getByLabel("Medium risk requires")).toHaveValue("second_factor");
  await expect(page.getByLabel("High risk requires")).toHaveValue("block");
  await expect(page.getByLabel("High risk from score")).toHaveValue("7");

  // This browser is the owner's one known device (the sign-in abroad never completed).
  await page.getByRole("link", { name: "Security" }).click();
  const devices = page.locator("#device-list tbody tr");
  await expect(devices).toHaveCount(1);
  await expect(devices.first().locator("td").first()).toHaveText(/^Chrome on /);
  await expectAccessible(page);
  await devices.first().getByRole("button", { name: /^Remove/ }).click();
  await expect(page.getByText("Device removed")).toBeVisible();
  await expect(page.locator("#no-devices")).toBeVisible();
  await expectAccessible(page);
});
