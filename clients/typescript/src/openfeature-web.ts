/**
 * OpenFeature in the browser: the OFREP web provider (`@openfeature/ofrep-web-provider`), which
 * evaluates every flag of the page's context in one request and then answers synchronously.
 * Give it a browser key: tenant-bound, `flags:read` only, usable only from the app's
 * `allowed_origins` (a server key's answers carry no CORS headers, so a page cannot read them).
 */

import { OFREPWebProvider, type OFREPWebProviderOptions } from "@openfeature/ofrep-web-provider";

/** Options of {@link createOpenFeatureWebProvider}: the OFREP web provider's, with the key. */
export interface OpenFeatureWebProviderOptions extends Omit<OFREPWebProviderOptions, "baseUrl" | "headers"> {
  /** Where Edgeplane is served (the provider adds `/ofrep/v1/...`). */
  baseUrl: string;
  /** A browser key (`POST /v1/apps/{id}/keys` with `kind: "browser"`). */
  apiKey: string;
}

/** The web OFREP provider for Edgeplane. */
export function createOpenFeatureWebProvider(options: OpenFeatureWebProviderOptions): OFREPWebProvider {
  const { baseUrl, apiKey, ...rest } = options;
  if (!apiKey) throw new TypeError("createOpenFeatureWebProvider: apiKey is required");
  return new OFREPWebProvider({
    ...rest,
    baseUrl: baseUrl.replace(/\/+$/, ""),
    headers: [["Authorization", `Bearer ${apiKey}`]],
  });
}

/** The same function under the name the server module uses, for code shared by both. */
export { createOpenFeatureWebProvider as createOpenFeatureProvider };
