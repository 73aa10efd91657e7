//! The console's sign-in page, the redirect to the operator identity provider, its callback,
//! and sign-out.

use ::http::StatusCode;
use serde_json::json;

use super::platform_signin::{self, Answer as IdpAnswer, PlatformSignInError};
use super::session::{self, Kind, NewSession};
use super::{page, Answer, Web, PREFIX, SESSION_COOKIE, SIGNIN_COOKIE};
use crate::ports::Platform;

/// The sign-in page with a reason (`expired`, `signedout`, or an error code).
pub(super) fn signin_url<P: Platform>(_web: &Web<'_, P>, reason: &str) -> String {
    format!("{PREFIX}/signin?reason={reason}")
}

/// The sign-in page, coming back to the page asked for afterwards.
pub(super) fn signin_url_returning<P: Platform>(web: &Web<'_, P>) -> String {
    let mut next = web.path.clone();
    if !web.query.is_empty() {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(web.query.iter())
            .finish();
        next = format!("{next}?{q}");
    }
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("next", &next)
        .finish();
    format!("{PREFIX}/signin?{q}")
}

/// A console path to land on after sign-in: under `/console/`, nothing else.
pub(super) fn safe_next(next: Option<&str>) -> Option<String> {
    next.filter(|n| {
        n.starts_with("/console/")
            && !n.starts_with("//")
            && n.len() <= 512
            && !n.contains('\\')
            && n.bytes().all(|b| b.is_ascii_graphic())
    })
    .map(str::to_owned)
}

/// What a sign-in page says for a `reason`.
fn reason_text(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "expired" => "Your session ended. Sign in again.",
        "signedout" => "You are signed out.",
        "console_signin_no_role" => {
            "Your account has no operator or auditor role. Ask your identity provider's administrator for one."
        }
        "console_signin_unknown" => "That sign-in expired or was already used. Start again.",
        "console_signin_not_admin" => {
            "The tenant console is for your organisation's owners and admins. Ask one of them for the admin role."
        }
        "console_signin_refused" => "The identity provider did not sign you in.",
        "console_signin_id_token" => "The identity provider's answer could not be verified.",
        "console_signin_idp_unavailable" => {
            "The identity provider cannot be reached now. Try again in a minute."
        }
        "console_signin_not_configured" => {
            "Operator sign-in is not configured on this deployment (OPERATOR_ISSUER, OPERATOR_CONSOLE_CLIENT_ID, OPERATOR_CONSOLE_CLIENT_SECRET)."
        }
        _ => return None,
    })
}

/// `GET /console/signin`.
pub(super) fn page<P: Platform>(web: &Web<'_, P>) -> Answer {
    if web.session.is_some() {
        return Answer::to(format!("{PREFIX}/"));
    }
    let message = web.q("reason").and_then(reason_text);
    let next = safe_next(web.q("next"));
    let tenant_next = next.clone();
    let operator_href = match &next {
        Some(n) => format!(
            "{PREFIX}/signin/operator?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("next", n)
                .finish()
        ),
        None => format!("{PREFIX}/signin/operator"),
    };
    Answer::page(page::signin(
        web,
        message,
        &operator_href,
        platform_signin::configured(web.p),
        tenant_next.as_deref(),
    ))
}

/// `GET /console/signin/operator`: to the identity provider.
pub(super) async fn start_platform<P: Platform>(
    web: &Web<'_, P>,
    set_cookies: &mut Vec<String>,
) -> Answer {
    let redirect_uri = format!("{}{PREFIX}/auth/callback", web.origin);
    match platform_signin::start(web.p, &redirect_uri, safe_next(web.q("next"))).await {
        Ok(started) => {
            let max_age = platform_signin::SIGNIN_TTL_MS / 1000;
            set_cookies.push(web.set_cookie(SIGNIN_COOKIE, &started.state, max_age));
            Answer::to(started.authorization_url)
        }
        Err(e) => failed(web, &e),
    }
}

/// `GET /console/auth/callback`: the identity provider's answer.
pub(super) async fn callback<P: Platform>(
    web: &Web<'_, P>,
    set_cookies: &mut Vec<String>,
) -> Answer {
    let answer = IdpAnswer {
        state: web.q("state").map(str::to_owned),
        code: web.q("code").map(str::to_owned),
        error: web.q("error").map(str::to_owned),
    };
    set_cookies.push(web.set_cookie(SIGNIN_COOKIE, "", 0));
    let signed_in = match platform_signin::callback(web.p, &answer, web.cookie(SIGNIN_COOKIE)).await
    {
        Ok(s) => s,
        Err(e) => return failed(web, &e),
    };
    if let Some(old) = &web.session {
        // A new sign-in replaces whatever session this browser had.
        let _ = session::revoke(web.p, &old.token_hash).await;
    }
    let principal = &signed_in.principal;
    let new = NewSession {
        kind: Kind::Platform,
        user_id: principal.user_id.clone(),
        role: principal.role.as_str().to_owned(),
        tenant_id: None,
        display_name: signed_in
            .email
            .clone()
            .unwrap_or_else(|| principal.subject.clone()),
        data: json!({ "issuer": principal.issuer, "subject": principal.subject }),
    };
    match session::create(web.p, new).await {
        Ok((token, _)) => {
            let max_age = session::ABSOLUTE_TIMEOUT_MS / 1000;
            set_cookies.push(web.set_cookie(SESSION_COOKIE, &token, max_age));
            Answer::to(signed_in.return_to.unwrap_or_else(|| format!("{PREFIX}/")))
        }
        Err(e) => {
            super::log_error(web, "console session could not be stored", &e.to_string());
            page::unavailable(web)
        }
    }
}

fn failed<P: Platform>(web: &Web<'_, P>, e: &PlatformSignInError) -> Answer {
    match e {
        PlatformSignInError::MasterKey(cause) | PlatformSignInError::Storage(cause) => {
            super::log_error(web, "console sign-in failed", cause);
            page::unavailable(web)
        }
        PlatformSignInError::IdpUnavailable(cause) => {
            super::log_error(web, "operator identity provider unavailable", cause);
            Answer::to(signin_url(web, e.code()))
        }
        _ => Answer::to(signin_url(web, e.code())),
    }
}

/// `POST /console/signout` (the CSRF token was checked before).
pub(super) async fn signout<P: Platform>(
    web: &Web<'_, P>,
    set_cookies: &mut Vec<String>,
) -> Answer {
    if let Some(s) = &web.session {
        if s.kind == Kind::Tenant {
            // The Edgeplane session behind it ends too: its refresh token is useless after.
            if let Some(access) = super::tenant_signin::access_token(web).await {
                super::tenant_signin::logout(web, &access).await;
            }
        }
        if let Err(e) = session::revoke(web.p, &s.token_hash).await {
            super::log_error(web, "console sign-out failed", &e.to_string());
            return page::error(
                web,
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-out failed; try again.",
            );
        }
    }
    set_cookies.push(web.set_cookie(SESSION_COOKIE, "", 0));
    Answer::to(signin_url(web, "signedout"))
}
