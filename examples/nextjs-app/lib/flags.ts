/**
 * Feature flags through OpenFeature: the server SDK with Edgeplane's OFREP provider
 * (`@edgeplane/client/openfeature`), the app's API key, and the signed-in user as the
 * evaluation context (tenant id and user id). Every evaluation asks Edgeplane (nothing is cached
 * here), so a flag change shows on the next page load: Edgeplane serves it within a second
 * (README, "Freshness at the edge").
 */

import "server-only";

import type { AccessTokenClaims } from "@edgeplane/client";
import { createOpenFeatureProvider } from "@edgeplane/client/openfeature";
import { type EvaluationDetails, OpenFeature } from "@openfeature/server-sdk";

import type { AppConfig } from "./config";
import { forget, singleton } from "./singleton";

/** The flag that switches the orders page to its new layout. */
export const NEW_ORDERS_UI = "new-orders-ui";

/** Sets the provider once per process (again after a failure). */
async function ready(cfg: AppConfig): Promise<void> {
  const name = `openfeature:${cfg.edgeplaneUrl}`;
  const pending = singleton(name, () =>
    OpenFeature.setProviderAndWait(
      createOpenFeatureProvider({
        baseUrl: cfg.edgeplaneUrl,
        apiKey: cfg.apiKey,
        // Next may cache fetches of server components: flags must be read fresh.
        fetchImplementation: (input, init) => fetch(input, { ...init, cache: "no-store" }),
      }),
    ),
  );
  try {
    await pending;
  } catch (e) {
    forget(name);
    throw e;
  }
}

/** The evaluation context of a user: the tenant (an app-wide key needs it) and the user. */
export function contextOf(claims: AccessTokenClaims) {
  return { tenantId: claims.tid, targetingKey: claims.sub, role: claims.role };
}

/**
 * A boolean flag for the user, with OpenFeature's details: on any failure the value is
 * `fallback` and `errorCode`/`errorMessage` say why (the page shows them).
 */
export async function booleanFlag(
  cfg: AppConfig,
  claims: AccessTokenClaims,
  key: string,
  fallback: boolean,
): Promise<EvaluationDetails<boolean>> {
  await ready(cfg);
  return OpenFeature.getClient().getBooleanDetails(key, fallback, contextOf(claims));
}
