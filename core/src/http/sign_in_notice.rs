//! The page the link of a new-sign-in notice opens (NFR-SEC-006): `GET` shows which sign-in
//! it is about and a button; only the form's `POST` signs that session out
//! ([`crate::risk::revoke`]). Mail scanners and link previews fetch links, so the `GET`
//! changes nothing.
//!
//! No cookie and no script: the token in the form body is the capability and the proof that
//! the post comes from someone who has the mail (a forged cross-site post cannot know it, and
//! at worst would sign out a session its author owns). The pages look like the login page and
//! carry its headers (strict CSP with `form-action 'self'`, never framed, cached or sent as a
//! referrer). An unknown, used, expired or malformed token gets one and the same page.

use ::http::StatusCode;
use maud::html;
use serde::Deserialize;
use utoipa::ToSchema;

use super::login_page::page;
use super::{Ctx, Request, Response};
use crate::ports::Platform;
use crate::risk::{self, RevokeOutcome, SignInNotice, REVOKE_LINK_PATH};
use crate::time::format_utc_minute;

/// The form of `POST /account/sign-ins/revoke`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = SignInRevokeRequest)]
pub(super) struct RevokeForm {
    /// The token of the notice's link.
    #[serde(default)]
    token: String,
}

/// The single `token` parameter of a query or form body (a repeated one counts as absent).
fn token_of(raw: &[u8]) -> String {
    let mut it = form_urlencoded::parse(raw).filter(|(k, _)| k == "token");
    match (it.next(), it.next()) {
        (Some((_, v)), None) => v.into_owned(),
        _ => String::new(),
    }
}

/// `GET /account/sign-ins/revoke?token=`: which sign-in the link is about, and the button.
pub(super) async fn confirm<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Response {
    let token = token_of(req.uri().query().unwrap_or("").as_bytes());
    match risk::revoke::notice(ctx.platform, &token).await {
        Ok(Some(notice)) => confirm_page(&notice, &token),
        Ok(None) => not_valid_page(),
        Err(e) => {
            ctx.log(
                "error",
                "sign-in notice lookup failed",
                Some("storage"),
                &e.to_string(),
            );
            unavailable_page()
        }
    }
}

/// `POST /account/sign-ins/revoke {token}`: signs the session out, once.
pub(super) async fn revoke<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Response {
    let form = RevokeForm {
        token: token_of(req.body()),
    };
    match risk::revoke::revoke(ctx.platform, &form.token, &ctx.request_id).await {
        Ok(RevokeOutcome::SignedOut {
            was_active,
            edge_pending,
        }) => {
            if let Some(cause) = edge_pending {
                ctx.log("warn", "session marker not written", Some("kv"), &cause);
            }
            done_page(was_active)
        }
        Ok(RevokeOutcome::NotValid) => not_valid_page(),
        Err(e) => {
            ctx.log(
                "error",
                "sign-in revocation failed",
                Some("storage"),
                &e.to_string(),
            );
            unavailable_page()
        }
    }
}

/// The confirmation page: when, from what and where, and the form.
fn confirm_page(n: &SignInNotice, token: &str) -> Response {
    let when = format_utc_minute(n.at_ms);
    let device = n.device_label.as_deref().unwrap_or("an unnamed device");
    let place = n
        .country
        .as_deref()
        .map_or_else(|| "an unknown place".to_owned(), |c| format!("country {c}"));
    let body = html! {
        h1 { "Sign out of this sign-in?" }
        p class="sub" { "Your account was signed in to on " (when) " from " (device) " in " (place) "." }
        p { "If it was you, there is nothing to do: close this page." }
        p { "If it was not you, sign that session out now. Then reset your password: someone knows it." }
        form method="post" action=(REVOKE_LINK_PATH) {
            input type="hidden" name="token" value=(token);
            button type="submit" { "Sign out that session" }
        }
    };
    page(
        StatusCode::OK,
        "Sign out of this sign-in?",
        body,
        None,
        false,
    )
}

/// The answer after the session was signed out (or had ended already).
fn done_page(was_active: bool) -> Response {
    let status = if was_active {
        "That session is signed out. Its tokens no longer work."
    } else {
        "That session had already ended. It is signed out."
    };
    let body = html! {
        h1 { "Session signed out" }
        p class="notice" role="status" { (status) }
        p { "If that sign-in was not you, reset your password now from your application's sign-in page (Forgot password): whoever signed in knows it. Resetting it ends every session and forgets every device." }
    };
    page(StatusCode::OK, "Session signed out", body, None, false)
}

/// The one answer to a malformed, unknown, used or expired token.
fn not_valid_page() -> Response {
    let body = html! {
        h1 { "This link is no longer valid" }
        p class="error" role="alert" { "It was used already, it expired, or it is not complete. Nothing was changed." }
        p { "If you see a sign-in you do not recognise, reset your password from your application's sign-in page (Forgot password)." }
    };
    page(
        StatusCode::NOT_FOUND,
        "This link is no longer valid",
        body,
        None,
        false,
    )
}

/// A storage failure: nothing is said about the token.
fn unavailable_page() -> Response {
    super::login_page::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Something went wrong",
        "This page is unavailable right now. Try again in a moment.",
    )
}
