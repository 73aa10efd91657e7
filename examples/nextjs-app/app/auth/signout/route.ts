// Signs out: the app's session cookie goes, and the browser is sent to Edgeplane's end-session
// endpoint with the ID token, which revokes the Edgeplane session (its refresh token, and its
// access tokens for whoever introspects) and sends the browser back to the app's home.
// A POST (a form's button), so another site cannot sign the user out with a link or an image.

import { type NextRequest, NextResponse } from "next/server";

import { config } from "@/lib/config";
import { signOutUrl } from "@/lib/oidc";
import { clearSession, cookieNames, openSession } from "@/lib/session";

export async function POST(req: NextRequest) {
  const cfg = config();
  // Browsers send Origin with every POST: one from another site is refused.
  const origin = req.headers.get("origin");
  if (origin !== null && origin !== new URL(cfg.appUrl).origin) {
    return new NextResponse("Cross-site sign-out refused", { status: 403 });
  }
  const session = await openSession(cfg, req.cookies.get(cookieNames(cfg).session)?.value);
  let target = new URL("/", cfg.appUrl);
  if (session) {
    try {
      target = await signOutUrl(cfg, session.idToken);
    } catch {
      // Edgeplane unreachable: the app's session ends all the same; Edgeplane's expires.
    }
  }
  const res = NextResponse.redirect(target, 303);
  clearSession(res, cfg);
  return res;
}
