/**
 * Who is signed in: the session cookie opened, and its access token verified against Edgeplane's
 * published keys (signature, issuer, audience = this app's id, expiry). The tenant and role shown
 * and used come from the verified token, never from anything the browser could change.
 */

import "server-only";

import { cookies } from "next/headers";
import { redirect } from "next/navigation";
import { type AccessTokenClaims, TokenVerificationError } from "@edgeplane/client";

import { type AppConfig, config } from "./config";
import { tokenVerifier } from "./edgeplane";
import { cookieNames, openSession, type Session } from "./session";

/** A signed-in user as the pages see them. */
export interface SignedIn {
  claims: AccessTokenClaims;
  session: Session;
}

/** The current user, or why there is none. */
export type CurrentUser =
  | { state: "signed-in"; user: SignedIn }
  | { state: "signed-out" }
  /** The access token expired (or its key was rotated away): a refresh may renew it. */
  | { state: "expired"; canRefresh: boolean }
  /** The token was refused for another reason: sign in again. */
  | { state: "refused"; reason: string };

/** Reads and verifies the session of this request. */
export async function currentUser(given?: AppConfig): Promise<CurrentUser> {
  // First: reading cookies marks the page as rendered per request (never prerendered).
  const jar = await cookies();
  const cfg = given ?? config();
  const session = await openSession(cfg, jar.get(cookieNames(cfg).session)?.value);
  if (!session) return { state: "signed-out" };
  try {
    const claims = await tokenVerifier(cfg).verify(session.accessToken);
    return { state: "signed-in", user: { claims, session } };
  } catch (e) {
    if (e instanceof TokenVerificationError) {
      if (e.code === "expired" || e.code === "unknown_key") return { state: "expired", canRefresh: !!session.refreshToken };
      return { state: "refused", reason: e.code };
    }
    throw e;
  }
}

/**
 * The signed-in user of a page or action at `path`; anyone else is sent to sign in (through a
 * refresh first when the session has a refresh token).
 */
export async function requireUser(path: string): Promise<SignedIn> {
  const current = await currentUser();
  if (current.state === "signed-in") return current.user;
  const to = encodeURIComponent(path);
  if (current.state === "expired" && current.canRefresh) redirect(`/auth/refresh?to=${to}`);
  redirect(`/auth/signin?to=${to}`);
}
