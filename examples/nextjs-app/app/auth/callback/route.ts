// Where Edgeplane sends the browser back: the code exchange (state, PKCE, the ID token's checks),
// then the access token verified against Edgeplane's keys before a session is made of it.

import { type NextRequest, NextResponse } from "next/server";

import { config, redirectUri } from "@/lib/config";
import { tokenVerifier } from "@/lib/edgeplane";
import { describeSignInError, finishSignIn } from "@/lib/oidc";
import { clearTransaction, cookieNames, openTransaction, setSession } from "@/lib/session";

export async function GET(req: NextRequest) {
  const cfg = config();
  const tx = await openTransaction(cfg, req.cookies.get(cookieNames(cfg).transaction)?.value);
  const fail = (error: string, description: string) => {
    const back = new URL("/", cfg.appUrl);
    back.searchParams.set("error", error);
    back.searchParams.set("error_description", description);
    const res = NextResponse.redirect(back, 303);
    clearTransaction(res, cfg);
    return res;
  };
  if (!tx) return fail("sign_in_expired", "The sign-in took too long or was started in another browser: sign in again.");

  // The redirect URI as registered (not as this request's Host header names it), with the
  // parameters Edgeplane added.
  const callback = new URL(redirectUri(cfg));
  callback.search = req.nextUrl.search;
  try {
    const { tokens, claims } = await finishSignIn(cfg, callback, tx);
    if (!tokens.id_token) return fail("invalid_response", "Edgeplane returned no ID token.");
    // Refuses a token of another audience or issuer before it becomes a session.
    await tokenVerifier(cfg).verify(tokens.access_token);
    const res = NextResponse.redirect(new URL(tx.returnTo, cfg.appUrl), 303);
    clearTransaction(res, cfg);
    await setSession(res, cfg, {
      accessToken: tokens.access_token,
      idToken: tokens.id_token,
      ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
      ...(typeof claims?.email === "string" ? { email: claims.email } : {}),
      ...(typeof claims?.name === "string" ? { name: claims.name } : {}),
    });
    return res;
  } catch (e) {
    const { error, description } = describeSignInError(e);
    return fail(error, description);
  }
}
