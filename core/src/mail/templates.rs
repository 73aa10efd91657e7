//! The mail Edgeplane writes: invitations (FR-TENANT-001, FR-TENANT-007) and password resets
//! (FR-AUTH-004), each in plain text and HTML. The HTML parts are `maud` templates, checked at
//! compile time and escaped by construction: tenant names, domains and links come from input.

use maud::{html, Markup};

use crate::ports::Mail;
use crate::time::format_utc_minute;

/// The invitation into a tenant (FR-TENANT-001, FR-TENANT-007): who invites to which tenant,
/// with which role, the acceptance link and its expiry.
pub fn invitation_mail(
    to: &str,
    tenant_name: &str,
    role: &str,
    link: &str,
    expires_at_ms: i64,
) -> Mail {
    let expires = format_utc_minute(expires_at_ms);
    Mail {
        to: to.to_owned(),
        subject: format!("You are invited to {tenant_name} on Edgeplane"),
        text: format!(
            "You have been invited to join {tenant_name} on Edgeplane as {role}.\n\n\
             Accept the invitation and choose your password:\n{link}\n\n\
             The link expires on {expires}. If you did not expect this invitation, ignore it.\n"
        ),
        html: html! {
            p { "You have been invited to join " strong { (tenant_name) } " on Edgeplane as " (role) "." }
            (acceptance(link, &expires))
        }
        .into_string(),
    }
}

/// The new tenant owner's invitation (FR-TENANT-001): the tenant, its domain, the acceptance
/// link and its expiry.
pub fn owner_invitation_mail(
    to: &str,
    tenant_name: &str,
    domain: &str,
    link: &str,
    expires_at_ms: i64,
) -> Mail {
    let expires = format_utc_minute(expires_at_ms);
    Mail {
        to: to.to_owned(),
        subject: format!("You are invited to manage {tenant_name} on Edgeplane"),
        text: format!(
            "You have been invited as the owner of {tenant_name} ({domain}) on Edgeplane.\n\n\
             Accept the invitation and choose your password:\n{link}\n\n\
             The link expires on {expires}. If you did not expect this invitation, ignore it.\n"
        ),
        html: html! {
            p { "You have been invited as the owner of " strong { (tenant_name) } " (" (domain) ") on Edgeplane." }
            (acceptance(link, &expires))
        }
        .into_string(),
    }
}

/// The link and expiry both invitations end with.
fn acceptance(link: &str, expires: &str) -> Markup {
    html! {
        p { a href=(link) { "Accept the invitation and choose your password" } }
        p { "The link expires on " (expires) ". If you did not expect this invitation, ignore it." }
    }
}

/// The password reset mail (FR-AUTH-004).
pub fn reset_mail(to: &str, link: &str) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Reset your Edgeplane password".to_owned(),
        text: format!(
            "Someone asked to reset the password of this account.\n\n\
             Choose a new password within one hour:\n{link}\n\n\
             If it was not you, ignore this message: your password stays as it is.\n"
        ),
        html: html! {
            p { "Someone asked to reset the password of this account." }
            p { a href=(link) { "Choose a new password" } " within one hour." }
            p { "If it was not you, ignore this message: your password stays as it is." }
        }
        .into_string(),
    }
}

/// The one-time code of a risky sign-in (NFR-SEC-006).
pub fn sign_in_code_mail(to: &str, code: &str) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Your sign-in code".to_owned(),
        text: format!(
            "Your sign-in code is {code}\n\n\
             It is valid for 10 minutes and can be used once. We asked for it because this \
             sign-in looked unusual (a new device or place). If you are not signing in, \
             someone knows your password: change it now.\n"
        ),
        html: html! {
            p { "Your sign-in code is " strong { (code) } }
            p { "It is valid for 10 minutes and can be used once. We asked for it because this sign-in looked unusual (a new device or place)." }
            p { "If you are not signing in, someone knows your password: change it now." }
        }
        .into_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::START_MS;

    /// FR-TENANT-001: the invitation names tenant, role, link and expiry in both parts, and
    /// input cannot inject markup into the HTML part.
    #[test]
    fn invitation_template_escapes_html_fr_tenant_001() {
        let m = invitation_mail(
            "ann@acme.test",
            "Acme <script>",
            "admin",
            "https://x.test/invitations/accept?token=a&b=\"c",
            START_MS,
        );
        assert_eq!(m.to, "ann@acme.test");
        assert!(m.text.contains("Acme <script>") && m.text.contains("as admin"));
        assert!(m.text.contains("2026-01-01 00:00 UTC"));
        assert!(m.html.contains("Acme &lt;script&gt;"), "{}", m.html);
        assert!(!m.html.contains("<script>"));
        assert!(m.html.contains("token=a&amp;b=&quot;c"), "{}", m.html);
        assert_eq!(
            m.html,
            "<p>You have been invited to join <strong>Acme &lt;script&gt;</strong> on Edgeplane \
             as admin.</p><p><a href=\"https://x.test/invitations/accept?token=a&amp;b=&quot;c\">\
             Accept the invitation and choose your password</a></p><p>The link expires on \
             2026-01-01 00:00 UTC. If you did not expect this invitation, ignore it.</p>"
        );
    }

    /// FR-TENANT-001: the owner's invitation escapes the tenant's name and domain.
    #[test]
    fn owner_invitation_escapes_hostile_names_fr_tenant_001() {
        let m = owner_invitation_mail(
            "owner@acme.test",
            "<script>alert(1)</script> & \"Co\"",
            "acme.test\"><img src=x>",
            "https://x.test/accept?token=t",
            START_MS,
        );
        assert_eq!(
            m.subject,
            "You are invited to manage <script>alert(1)</script> & \"Co\" on Edgeplane"
        );
        assert!(
            !m.html.contains("<script") && !m.html.contains("<img"),
            "{}",
            m.html
        );
        assert!(m.html.contains(
            "<strong>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;</strong> \
             (acme.test&quot;&gt;&lt;img src=x&gt;)"
        ));
        assert!(m.text.contains("expires on 2026-01-01 00:00 UTC"));
    }

    /// FR-AUTH-004: the reset link is escaped in the HTML part and verbatim in the text part.
    #[test]
    fn reset_template_escapes_the_link_fr_auth_004() {
        let m = reset_mail("b@acme.test", "https://h\"><img>/password/reset?token=t");
        assert!(m.text.contains("https://h\"><img>/password/reset?token=t"));
        assert!(!m.html.contains("<img>"), "{}", m.html);
        assert!(m.html.contains("&quot;&gt;&lt;img&gt;"), "{}", m.html);
    }
}
