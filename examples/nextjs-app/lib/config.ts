/**
 * The app's settings, read from the environment at request time (never at build time: one
 * build runs against any Edgeplane). A missing or malformed variable fails the request that
 * needs it with a message naming the variable.
 */

import "server-only";

/** What the app needs to know about itself and Edgeplane. */
export interface AppConfig {
  /** Edgeplane's public base URL: its OpenID issuer, OFREP and events API. */
  edgeplaneUrl: string;
  /** The app's id in Edgeplane: the OpenID client id, and the audience of its access tokens. */
  clientId: string;
  /** The OpenID client secret, when the app was made a confidential client; else PKCE alone. */
  clientSecret: string | undefined;
  /** A server API key of the app: `flags:read`, `bill:write`, `log:write` (and `bill:read` for usage). */
  apiKey: string;
  /** Where the browser reaches this app (no trailing slash): redirect URIs are made from it. */
  appUrl: string;
  /** Seals the session cookie; at least 32 characters. */
  sessionSecret: string;
}

/** A required setting that is missing or wrong. */
export class ConfigError extends Error {
  constructor(name: string, problem: string) {
    super(`${name} ${problem} (see examples/nextjs-app/README.md, "Environment")`);
    this.name = "ConfigError";
  }
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new ConfigError(name, "is not set");
  return value;
}

function httpUrl(name: string): string {
  const value = required(name).replace(/\/+$/, "");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(name, "is not a URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new ConfigError(name, "must be an http(s) URL");
  return value;
}

/** The settings; throws {@link ConfigError} naming the first one that is missing or wrong. */
export function config(): AppConfig {
  const sessionSecret = required("SESSION_SECRET");
  if (sessionSecret.length < 32) throw new ConfigError("SESSION_SECRET", "must be at least 32 characters");
  const clientSecret = process.env.EDGEPLANE_CLIENT_SECRET;
  return {
    edgeplaneUrl: httpUrl("EDGEPLANE_URL"),
    clientId: required("EDGEPLANE_CLIENT_ID"),
    clientSecret: clientSecret ? clientSecret : undefined,
    apiKey: required("EDGEPLANE_API_KEY"),
    appUrl: httpUrl("APP_URL"),
    sessionSecret,
  };
}

/** Whether cookies must be `Secure` (and may take the `__Host-` prefix): the app is served over https. */
export function secureCookies(cfg: AppConfig): boolean {
  return cfg.appUrl.startsWith("https://");
}

/** Where Edgeplane sends the browser back with the authorization code. */
export function redirectUri(cfg: AppConfig): string {
  return `${cfg.appUrl}/auth/callback`;
}

/** Where Edgeplane sends the browser after signing out (registered as a redirect URI too). */
export function postLogoutRedirectUri(cfg: AppConfig): string {
  return `${cfg.appUrl}/`;
}
