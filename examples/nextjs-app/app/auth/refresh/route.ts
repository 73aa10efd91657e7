// Renews an expired access token with the session's refresh token (Edgeplane rotates it), then
// goes back to the page; a refused refresh (session revoked, user disabled) signs in again.

import { type NextRequest, NextResponse } from "next/server";

import { config } from "@/lib/config";
import { tokenVerifier } from "@/lib/edgeplane";
import { refresh } from "@/lib/oidc";
import { clearSession, cookieNames, openSession, safeReturnTo, setSession } from "@/lib/session";

export async function GET(req: NextRequest) {
  const cfg = config();
  const to = safeReturnTo(req.nextUrl.searchParams.get("to"));
  const session = await openSession(cfg, req.cookies.get(cookieNames(cfg).session)?.value);
  const signIn = () => {
    const res = NextResponse.redirect(new URL(`/auth/signin?to=${encodeURIComponent(to)}`, cfg.appUrl), 303);
    clearSession(res, cfg);
    return res;
  };
  if (!session?.refreshToken) return signIn();
  try {
    const tokens = await refresh(cfg, session.refreshToken);
    await tokenVerifier(cfg).verify(tokens.access_token);
    const res = NextResponse.redirect(new URL(to, cfg.appUrl), 303);
    await setSession(res, cfg, {
      ...session,
      accessToken: tokens.access_token,
      idToken: tokens.id_token ?? session.idToken,
      ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
    });
    return res;
  } catch {
    return signIn();
  }
}
