//! The pages a mailed link opens, for any tenant user, signed in or not: accepting an
//! invitation (choosing a password) and resetting a forgotten password. The token in the link is
//! the capability; the forms post it with the new password to the API.

use ::http::{Method, StatusCode};
use maud::html;
use serde_json::{json, Value as Json};

use super::api::{self, FieldErrors};
use super::page::{self, Section};
use super::{Answer, Web};
use crate::ports::Platform;

/// What a page of this kind is about.
struct Kind {
    title: &'static str,
    intro: &'static str,
    action: &'static str,
    api: &'static str,
    button: &'static str,
    done: &'static str,
}

const INVITATION: Kind = Kind {
    title: "Accept your invitation",
    intro: "Choose the password of your new account.",
    action: "/console/account/invitation",
    api: "/v1/invitations/accept",
    button: "Create my account",
    done: "Your account is ready. Sign in to your organisation's apps with your email and this password.",
};

const RESET: Kind = Kind {
    title: "Choose a new password",
    intro: "Every session of your account ends when the password changes.",
    action: "/console/account/password-reset",
    api: "/v1/auth/password/reset",
    button: "Set the password",
    done: "Your password was changed. Sign in with it.",
};

/// Dispatches `/console/account/...`.
pub(super) async fn route<P: Platform>(web: &Web<'_, P>, rest: &[&str], get: bool) -> Answer {
    let kind = match rest {
        ["invitation"] => &INVITATION,
        ["password-reset"] => &RESET,
        _ => return page::not_found(web),
    };
    if get {
        let token = web.q("token").unwrap_or("");
        return form(web, kind, token, &FieldErrors::none(), StatusCode::OK);
    }
    submit(web, kind).await
}

fn form<P: Platform>(
    web: &Web<'_, P>,
    kind: &Kind,
    token: &str,
    errors: &FieldErrors,
    status: StatusCode,
) -> Answer {
    let body = html! {
        section.card {
            p { (kind.intro) }
            form method="post" action=(kind.action) {
                input type="hidden" name="token" value=(token);
                (page::form_errors(errors, &["password"]))
                (page::input("password", "New password", "", "password", errors, true))
                (page::input("confirm", "The same password again", "", "password", errors, true))
                button type="submit" { (kind.button) }
            }
        }
    };
    Answer::Page(status, page::frame(web, Section::None, kind.title, body))
}

async fn submit<P: Platform>(web: &Web<'_, P>, kind: &Kind) -> Answer {
    let token = web.text("token");
    let password = web.field("password").unwrap_or("");
    if password != web.field("confirm").unwrap_or("") {
        let errors = FieldErrors {
            detail: None,
            fields: vec![("confirm".to_owned(), "is not the same password".to_owned())],
        };
        return form(web, kind, token, &errors, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let body = json!({ "token": token, "password": password });
    let reply = api::call_anonymous(web, Method::POST, kind.api, &body).await;
    if reply.ok() {
        let done = html! {
            (page::message("notice", kind.done))
            p { a href="/console/signin" { "Owners and admins: sign in to the tenant console" } }
        };
        return Answer::page(page::frame(web, Section::None, kind.title, done));
    }
    if reply.status >= 500 {
        return page::unavailable(web);
    }
    let mut errors = reply.errors();
    if errors.fields.is_empty() {
        // An unknown, used or expired token: say so without saying which.
        errors.detail = Some(
            reply
                .body
                .get("detail")
                .and_then(Json::as_str)
                .unwrap_or("This link is not valid any more. Ask for a new one.")
                .to_owned(),
        );
    }
    form(web, kind, token, &errors, StatusCode::UNPROCESSABLE_ENTITY)
}
