// NFR-SEC-006: the notice of a sign-in from a new device carries a link that signs out that
// session. The link opens a page that changes nothing by itself; its button (a plain form post,
// no script, reached and pressed with the keyboard) signs the session out once; the spent link
// says so. Every page passes axe.

import { expect, expectAccessible, test } from "./fixtures.mjs";
import { PASSWORD, accept, provision } from "./tenant-helpers.mjs";

/** `POST /v1/auth/login` as the owner from `device` (an API client naming its device). */
async function signInFrom(request, domain, email, device) {
  const resp = await request.post("/v1/auth/login", {
    headers: { "Edgeplane-Device": device },
    data: { tenant: domain, email, password: PASSWORD },
  });
  expect(resp.status(), await resp.text()).toBe(200);
  return resp.json();
}

/** The sign-out link of the newest new-sign-in notice to `to`, from the dev outbox. */
async function noticeLink(request, to) {
  let link = null;
  await expect
    .poll(async () => {
      const resp = await request.get(`/__dev/mail?to=${encodeURIComponent(to)}`);
      const text = JSON.stringify(await resp.json());
      link = text.match(/https?:\/\/[^"\s\\]+\/account\/sign-ins\/revoke\?token=[A-Za-z0-9_-]+/)?.[0] ?? null;
      return link;
    }, { message: `a new-sign-in notice to ${to}` })
    .not.toBeNull();
  return link;
}

test("the link of a new-sign-in notice signs that session out, once", async ({
  page,
  request,
  edgeplane,
  saveScreenshot,
}) => {
  const tenant = await provision(request, edgeplane, "notice");
  await accept(page, tenant.link, PASSWORD);
  await signInFrom(request, tenant.domain, tenant.owner, "browser-test-laptop-0001");
  const stolen = await signInFrom(request, tenant.domain, tenant.owner, "browser-test-stolen-0002");
  const link = await noticeLink(request, tenant.owner);

  await page.goto(link);
  await expect(page.getByRole("heading", { name: "Sign out of this sign-in?", level: 1 })).toBeVisible();
  await expectAccessible(page);
  await saveScreenshot("sign-in-notice-confirm");
  // Opening the page signed nothing out.
  const still = await request.post("/v1/auth/refresh", { data: { refresh_token: stolen.refresh_token } });
  expect(still.status(), await still.text()).toBe(200);
  const rotated = await still.json();

  // Keyboard only: Tab reaches the button, which shows where focus is, and Enter presses it.
  const button = page.getByRole("button", { name: "Sign out that session" });
  for (let i = 0; i < 10; i++) {
    await page.keyboard.press("Tab");
    if (await button.evaluate((el) => el === document.activeElement)) break;
  }
  await expect(button).toBeFocused();
  await expect(button).not.toHaveCSS("outline-style", "none");
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { name: "Session signed out", level: 1 })).toBeVisible();
  await expect(page.getByRole("status")).toContainText("signed out");
  await expectAccessible(page);
  await saveScreenshot("sign-in-notice-done");
  const refused = await request.post("/v1/auth/refresh", { data: { refresh_token: rotated.refresh_token } });
  expect(refused.status(), await refused.text()).toBe(401);

  await page.goto(link);
  await expect(page.getByRole("heading", { name: "This link is no longer valid", level: 1 })).toBeVisible();
  await expectAccessible(page);
});
