/**
 * The app's cookies, sealed with SESSION_SECRET (JWE, `dir` + A256GCM: encrypted and
 * authenticated, so the browser can neither read nor change them), httpOnly and SameSite=Lax.
 *
 * - the session: the tokens Edgeplane issued at sign-in, until the refresh token's end;
 * - the sign-in transaction: PKCE verifier, state and nonce, for ten minutes, between the
 *   redirect to Edgeplane and the callback.
 */

import "server-only";

import { createHash } from "node:crypto";
import { EncryptJWT, jwtDecrypt } from "jose";
import type { NextResponse } from "next/server";

import { type AppConfig, secureCookies } from "./config";

/** What the session cookie holds. */
export interface Session {
  /** Edgeplane's access token for this app (`aud` = the app's id), verified on every request. */
  accessToken: string;
  /** The ID token, sent back as `id_token_hint` when signing out. */
  idToken: string;
  /** The refresh token (scope `offline_access`), when Edgeplane issued one. */
  refreshToken?: string;
  /** Who signed in, from the ID token, for display only. */
  email?: string;
  name?: string;
}

/** What the sign-in transaction cookie holds. */
export interface SignInTransaction {
  codeVerifier: string;
  state: string;
  nonce: string;
  /** The app path to go back to after signing in. */
  returnTo: string;
}

/** The session lasts at most as long as Edgeplane's refresh tokens (30 days). */
const SESSION_MAX_AGE_S = 30 * 24 * 3600;
/** A sign-in must come back within this long. */
const TRANSACTION_MAX_AGE_S = 600;

/** The cookie names; `__Host-` (no Domain, Path=/, Secure) when the app is served over https. */
export function cookieNames(cfg: AppConfig) {
  const prefix = secureCookies(cfg) ? "__Host-" : "";
  return { session: `${prefix}app-session`, transaction: `${prefix}app-signin` };
}

function key(cfg: AppConfig): Uint8Array {
  // A 256-bit key from a secret of any length; a different purpose label per use would allow
  // more cookies under one secret.
  return new Uint8Array(createHash("sha256").update(`edgeplane-example-app/cookie\0${cfg.sessionSecret}`).digest());
}

async function seal(cfg: AppConfig, payload: object, maxAgeS: number): Promise<string> {
  return new EncryptJWT({ ...payload })
    .setProtectedHeader({ alg: "dir", enc: "A256GCM" })
    .setIssuedAt()
    .setExpirationTime(`${maxAgeS}s`)
    .encrypt(key(cfg));
}

async function open<T>(cfg: AppConfig, value: string | undefined): Promise<T | undefined> {
  if (!value) return undefined;
  try {
    const { payload } = await jwtDecrypt(value, key(cfg), { keyManagementAlgorithms: ["dir"], contentEncryptionAlgorithms: ["A256GCM"] });
    return payload as T;
  } catch {
    // Tampered, expired, or sealed under a previous secret: as if there were none.
    return undefined;
  }
}

function cookieOptions(cfg: AppConfig, maxAge: number) {
  return { httpOnly: true, secure: secureCookies(cfg), sameSite: "lax" as const, path: "/", maxAge };
}

/** Reads the session from the cookie value, if it opens. */
export function openSession(cfg: AppConfig, value: string | undefined): Promise<Session | undefined> {
  return open<Session>(cfg, value);
}

/** Sets the session cookie on a response. */
export async function setSession(res: NextResponse, cfg: AppConfig, session: Session): Promise<void> {
  res.cookies.set(cookieNames(cfg).session, await seal(cfg, session, SESSION_MAX_AGE_S), cookieOptions(cfg, SESSION_MAX_AGE_S));
}

/** Removes the session cookie. */
export function clearSession(res: NextResponse, cfg: AppConfig): void {
  res.cookies.set(cookieNames(cfg).session, "", cookieOptions(cfg, 0));
}

/** Reads the sign-in transaction from the cookie value, if it opens. */
export function openTransaction(cfg: AppConfig, value: string | undefined): Promise<SignInTransaction | undefined> {
  return open<SignInTransaction>(cfg, value);
}

/** Sets the sign-in transaction cookie on a response. */
export async function setTransaction(res: NextResponse, cfg: AppConfig, tx: SignInTransaction): Promise<void> {
  res.cookies.set(cookieNames(cfg).transaction, await seal(cfg, tx, TRANSACTION_MAX_AGE_S), cookieOptions(cfg, TRANSACTION_MAX_AGE_S));
}

/** Removes the sign-in transaction cookie (it is good for one callback). */
export function clearTransaction(res: NextResponse, cfg: AppConfig): void {
  res.cookies.set(cookieNames(cfg).transaction, "", cookieOptions(cfg, 0));
}

/** A path of this app to go back to, or `/`: never another origin (no open redirect). */
export function safeReturnTo(value: string | null | undefined): string {
  if (!value || !value.startsWith("/") || value.startsWith("//") || value.startsWith("/\\")) return "/";
  return value;
}
