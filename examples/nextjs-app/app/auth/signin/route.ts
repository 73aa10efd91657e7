// Starts a sign-in: a fresh PKCE verifier, state and nonce sealed in a short-lived cookie, and a
// redirect to Edgeplane's universal login. `?to=` is the app page to come back to.

import { type NextRequest, NextResponse } from "next/server";

import { config } from "@/lib/config";
import { beginSignIn, describeSignInError } from "@/lib/oidc";
import { safeReturnTo, setTransaction } from "@/lib/session";

export async function GET(req: NextRequest) {
  const cfg = config();
  const returnTo = safeReturnTo(req.nextUrl.searchParams.get("to"));
  let started;
  try {
    started = await beginSignIn(cfg);
  } catch (e) {
    // Discovery failed: Edgeplane is unreachable or is not at EDGEPLANE_URL.
    const { error, description } = describeSignInError(e);
    const back = new URL("/", cfg.appUrl);
    back.searchParams.set("error", error);
    back.searchParams.set("error_description", `Edgeplane's OpenID provider could not be reached: ${description}`);
    return NextResponse.redirect(back, 303);
  }
  const res = NextResponse.redirect(started.url, 303);
  await setTransaction(res, cfg, {
    codeVerifier: started.codeVerifier,
    state: started.state,
    nonce: started.nonce,
    returnTo,
  });
  res.headers.set("Cache-Control", "no-store");
  return res;
}
