// FR-SYS-004: operators and auditors sign in to the console through their OpenID provider (here
// scripts/dev-idp.mjs) and out again; an account with neither role is refused on Edgeplane's
// sign-in page. The console loads nothing from other origins, the IdP aside during a sign-in.

import { expect, test } from "./fixtures.mjs";

const SIGNIN = "/console/signin";

/** Edgeplane's sign-in page, whatever its query string. */
const onSignin = (baseURL) => (url) => url.origin === baseURL && url.pathname === SIGNIN;

/** The console's entry from Edgeplane's sign-in page: a link or a button. */
const signinEntry = (page) => {
  const name = "Sign in as operator or auditor";
  return page.getByRole("link", { name }).or(page.getByRole("button", { name }));
};

/** From Edgeplane's sign-in page through the IdP's login form as `account`. */
async function signInThroughIdp(page, edgeplane, origins, account) {
  await origins.during("sign-in", edgeplane.idp.origin, async () => {
    await signinEntry(page).click();
    await expect(page).toHaveURL((url) => url.origin === edgeplane.idp.origin);
    await page.getByLabel("Email").fill(account.email);
    await page.getByLabel("Password").fill(account.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page).toHaveURL((url) => url.origin === edgeplane.baseURL && url.pathname.startsWith("/console/"));
  });
}

test("an operator signs in through the IdP, sees the tenants and signs out", async ({
  page,
  edgeplane,
  accounts,
  origins,
  saveScreenshot,
}) => {
  await page.goto("/console/");
  await expect(page).toHaveURL(onSignin(edgeplane.baseURL));
  await expect(signinEntry(page)).toBeVisible();
  await saveScreenshot("signin");

  await signInThroughIdp(page, edgeplane, origins, accounts.operator);
  await expect(page.getByRole("heading", { name: "Tenants" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
  await saveScreenshot("operator-tenants");

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(onSignin(edgeplane.baseURL));
  await expect(signinEntry(page)).toBeVisible();
  // The session is gone, not only the page.
  await page.goto("/console/");
  await expect(page).toHaveURL(onSignin(edgeplane.baseURL));
});

test("an account with neither role is refused on Edgeplane's sign-in page", async ({
  page,
  edgeplane,
  accounts,
  origins,
  saveScreenshot,
}) => {
  await page.goto("/console/");
  await expect(page).toHaveURL(onSignin(edgeplane.baseURL));

  await signInThroughIdp(page, edgeplane, origins, accounts.nobody);
  await expect(page).toHaveURL(onSignin(edgeplane.baseURL));
  await expect(page.getByText(/no operator or auditor role/i)).toBeVisible();
  await expect(page.getByRole("button", { name: "Sign out" })).toHaveCount(0);
  await saveScreenshot("nobody-refused");

  await page.goto("/console/");
  await expect(page).toHaveURL(onSignin(edgeplane.baseURL));
});
