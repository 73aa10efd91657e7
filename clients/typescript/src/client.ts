/**
 * The typed API client: openapi-fetch over the types generated from Edgeplane's OpenAPI document
 * (src/schema.d.ts), with the caller's credential as `Authorization: Bearer`, and token
 * introspection (RFC 7662) as a method of its own.
 */

import createClient, { type Client, type Middleware } from "openapi-fetch";

import { EdgeplaneError, isProblem } from "./errors.js";
import type { components, paths } from "./schema.js";

/** A credential, or a function returning the current one (called before every request). */
export type Credential = string | (() => string | Promise<string>);

/** Options of {@link createEdgeplaneClient}. */
export interface EdgeplaneClientOptions {
  /** Where Edgeplane is served, e.g. `https://edgeplane.example.com` (no `/v1`). */
  baseUrl: string;
  /** A managed app's API key (`ep_<env>_<key id>_<secret>`): flags, events, introspection. */
  apiKey?: Credential;
  /**
   * Any other bearer token: a tenant user's Edgeplane access token (tenant administration,
   * `/v1/me`), or an operator's or auditor's token from the operator identity provider.
   */
  accessToken?: Credential;
  /** The fetch to use (defaults to `globalThis.fetch`); it is called with a `Request`. */
  fetch?: (input: Request) => Promise<Response>;
  /** Headers sent with every request (without a credential of their own: use the options above). */
  headers?: Record<string, string>;
}

/** The claims of an active token as introspection returns them (`{active: false}` otherwise). */
export type Introspection = components["schemas"]["Introspection"];

/** Options of one {@link EdgeplaneClient.introspect} call. */
export interface IntrospectOptions {
  /** Aborts the request. */
  signal?: AbortSignal;
}

/** The typed client: `GET`, `POST`, `PUT`, `PATCH`, `DELETE` on the API's paths, and more. */
export interface EdgeplaneClient extends Client<paths> {
  /** The base URL the client was made for. */
  readonly baseUrl: string;
  /**
   * Asks Edgeplane whether an access token is active now (`POST /oauth/introspect`, RFC 7662):
   * unlike local verification, it sees a revocation (sign-out, disabled user, suspended tenant)
   * at once. Needs an API key with the `token:introspect` scope. Resolves to `{active: false}`
   * for any token that is not active; throws {@link EdgeplaneError} when the call is refused.
   */
  introspect(token: string, options?: IntrospectOptions): Promise<Introspection>;
}

/**
 * Makes a typed client of Edgeplane's API. Give it at most one credential: `apiKey` for a
 * managed app's calls, `accessToken` for a user's or an operator's. A request that sets its own
 * `Authorization` header keeps it.
 *
 * ```ts
 * const edgeplane = createEdgeplaneClient({ baseUrl, apiKey: process.env.EDGEPLANE_KEY });
 * const { data, error } = await edgeplane.GET("/v1/flags", { params: { query: { tenant } } });
 * ```
 */
export function createEdgeplaneClient(options: EdgeplaneClientOptions): EdgeplaneClient {
  const { baseUrl, apiKey, accessToken } = options;
  if (typeof baseUrl !== "string" || !/^https?:\/\//.test(baseUrl)) {
    throw new TypeError("createEdgeplaneClient: baseUrl must be an http(s) URL");
  }
  if (apiKey !== undefined && accessToken !== undefined) {
    throw new TypeError("createEdgeplaneClient: give apiKey or accessToken, not both");
  }
  const headers = options.headers ?? {};
  if (Object.keys(headers).some((h) => ["authorization", "x-api-key"].includes(h.toLowerCase()))) {
    throw new TypeError("createEdgeplaneClient: pass the credential as apiKey or accessToken, not as a header");
  }
  const root = baseUrl.replace(/\/+$/, "");
  const client = createClient<paths>({ baseUrl: root, headers, ...(options.fetch ? { fetch: options.fetch } : {}) });
  const credential = apiKey ?? accessToken;
  if (credential !== undefined) client.use(bearer(credential));

  const introspect = async (token: string, opts: IntrospectOptions = {}): Promise<Introspection> => {
    const { data, error, response } = await client.POST("/oauth/introspect", {
      body: { token },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (data !== undefined) return data;
    throw new EdgeplaneError(response.status, isProblem(error) ? error : undefined);
  };
  return Object.assign(client, { baseUrl: root, introspect });
}

/** Sets `Authorization: Bearer <credential>` unless the request was given one of its own. */
function bearer(credential: Credential): Middleware {
  return {
    async onRequest({ request, schemaPath }) {
      // E.g. POST /v1/auth/logout with the user's token, from a client holding the app's key.
      if (request.headers.has("authorization")) return request;
      const value = typeof credential === "function" ? await credential() : credential;
      if (!value) throw new TypeError(`no credential for ${schemaPath}: the credential function returned nothing`);
      request.headers.set("authorization", `Bearer ${value}`);
      return request;
    },
  };
}
