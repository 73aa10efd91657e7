/**
 * Signing in through Edgeplane's OpenID provider with `openid-client`: discovery from
 * `<EDGEPLANE_URL>/.well-known/openid-configuration`, the authorization code flow with PKCE
 * (S256), `state` and `nonce`, the code exchange with the ID token's checks, refresh, and
 * RP-initiated logout. A public client unless EDGEPLANE_CLIENT_SECRET is set.
 */

import "server-only";

import * as oidc from "openid-client";

import { type AppConfig, postLogoutRedirectUri, redirectUri } from "./config";
import { forget, singleton } from "./singleton";

/** The scopes asked for: who the user is, and a refresh token so the session outlives 15 minutes. */
export const SCOPES = "openid email profile offline_access";

function isLoopback(url: URL): boolean {
  return url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]";
}

/** The provider's configuration, discovered once per process (again after a failure). */
export async function provider(cfg: AppConfig): Promise<oidc.Configuration> {
  const name = `oidc:${cfg.edgeplaneUrl}:${cfg.clientId}`;
  const pending = singleton(name, () => {
    const issuer = new URL(cfg.edgeplaneUrl);
    const auth = cfg.clientSecret ? oidc.ClientSecretBasic(cfg.clientSecret) : oidc.None();
    // Plain http only for an Edgeplane on this machine (make dev-app, the tests).
    const options = issuer.protocol === "http:" && isLoopback(issuer) ? { execute: [oidc.allowInsecureRequests] } : undefined;
    return oidc.discovery(issuer, cfg.clientId, cfg.clientSecret, auth, options);
  });
  try {
    return await pending;
  } catch (e) {
    forget(name);
    throw e;
  }
}

/** A new sign-in: the URL to send the browser to, and what the callback must check. */
export async function beginSignIn(cfg: AppConfig) {
  const config = await provider(cfg);
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri(cfg),
    scope: SCOPES,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  return { url, codeVerifier, state, nonce };
}

/**
 * The code exchange for the callback URL the browser came back to: checks `state`, sends the
 * PKCE verifier, and validates the ID token (issuer, audience, nonce, expiry).
 */
export async function finishSignIn(
  cfg: AppConfig,
  callbackUrl: URL,
  expected: { codeVerifier: string; state: string; nonce: string },
) {
  const config = await provider(cfg);
  const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
    pkceCodeVerifier: expected.codeVerifier,
    expectedState: expected.state,
    expectedNonce: expected.nonce,
    idTokenExpected: true,
  });
  return { tokens, claims: tokens.claims() };
}

/** New tokens for a refresh token (Edgeplane rotates it: the answer holds the next one). */
export async function refresh(cfg: AppConfig, refreshToken: string) {
  const config = await provider(cfg);
  return oidc.refreshTokenGrant(config, refreshToken);
}

/** Where to send the browser to end its Edgeplane session, then come back here. */
export async function signOutUrl(cfg: AppConfig, idToken: string): Promise<URL> {
  const config = await provider(cfg);
  return oidc.buildEndSessionUrl(config, {
    id_token_hint: idToken,
    post_logout_redirect_uri: postLogoutRedirectUri(cfg),
  });
}

/** What an error of the sign-in says, for the page: an OAuth error's code and description. */
export function describeSignInError(e: unknown): { error: string; description: string } {
  if (e instanceof oidc.AuthorizationResponseError || e instanceof oidc.ResponseBodyError) {
    return { error: e.error, description: e.error_description ?? e.message };
  }
  if (e instanceof Error) return { error: "sign_in_failed", description: e.message };
  return { error: "sign_in_failed", description: String(e) };
}
