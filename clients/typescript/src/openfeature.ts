/**
 * OpenFeature on the server: the OFREP provider (`@openfeature/ofrep-provider`) pointed at
 * Edgeplane's `/ofrep/v1/evaluate/flags/{key}` with the app's API key (`flags:read`).
 */

import { OFREPProvider, type OFREPProviderOptions } from "@openfeature/ofrep-provider";

/** Options of {@link createOpenFeatureProvider}: the OFREP provider's, with the key. */
export interface OpenFeatureProviderOptions extends Omit<OFREPProviderOptions, "baseUrl" | "headers"> {
  /** Where Edgeplane is served (the provider adds `/ofrep/v1/...`). */
  baseUrl: string;
  /** An API key with the `flags:read` scope. */
  apiKey: string;
}

/**
 * The server OFREP provider for Edgeplane. With an app-wide key, name the tenant in the
 * evaluation context as `tenantId`; a tenant-bound key implies it.
 *
 * ```ts
 * await OpenFeature.setProviderAndWait(createOpenFeatureProvider({ baseUrl, apiKey }));
 * const on = await OpenFeature.getClient().getBooleanValue("new-checkout", false, { tenantId, targetingKey: userId });
 * ```
 */
export function createOpenFeatureProvider(options: OpenFeatureProviderOptions): OFREPProvider {
  const { baseUrl, apiKey, ...rest } = options;
  if (!apiKey) throw new TypeError("createOpenFeatureProvider: apiKey is required");
  return new OFREPProvider({
    ...rest,
    baseUrl: baseUrl.replace(/\/+$/, ""),
    headers: [["Authorization", `Bearer ${apiKey}`]],
  });
}
