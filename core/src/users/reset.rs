//! Password reset (UC-AUTH-RESET) and change (FR-AUTH-004): both set a policy-checked password
//! and revoke every session of the user, in D1 and at the edge.

use super::{checked_hash, password, store_password_stmts, PasswordRefused, PolicyRule};
use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::kernel::ErrorKind;
use crate::kernel::Links;
use crate::kernel::{Email, TenantDomain};
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};
use crate::sessions::{active_sids, mark_sessions_revoked, revoke_user_sessions_stmt};
use crate::throttle;

/// How long a reset token is valid: one hour.
pub const RESET_TOKEN_TTL_MS: i64 = 3600 * 1000;
/// Longest reset token accepted, in bytes (ours are 43).
const MAX_TOKEN_BYTES: usize = 128;

/// Why a password could not be set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SetPasswordError {
    /// Unknown, used or expired reset token, or a user or tenant that may not sign in.
    #[error("the reset token is not valid")]
    InvalidToken,
    /// The current password given to a change is wrong.
    #[error("the current password is incorrect")]
    WrongPassword,
    /// Too many wrong passwords for the account or from the client (ERR-RATE-429): a change
    /// shares sign-in's limits.
    #[error("too many failed attempts")]
    RateLimited {
        /// Seconds until the window ends.
        retry_after_secs: i64,
    },
    /// The new password breaks the policy (ERR-VAL-422).
    #[error("the password breaks the password policy")]
    Policy(Vec<PolicyRule>),
    /// Hashing or storage failed.
    #[error("password storage failed: {0}")]
    Storage(String),
    /// The password was set but a session marker could not be written (introspection may
    /// accept the old access tokens until they expire).
    #[error("password set but session markers not written: {0}")]
    EdgePending(String),
}

impl SetPasswordError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            SetPasswordError::InvalidToken => "reset_token_invalid",
            SetPasswordError::WrongPassword => "wrong_password",
            SetPasswordError::RateLimited { .. } => "rate_limited",
            SetPasswordError::Policy(_) => "password_policy",
            SetPasswordError::Storage(_) => "storage",
            SetPasswordError::EdgePending(_) => "edge_pending",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            SetPasswordError::InvalidToken => ErrorKind::Refused,
            SetPasswordError::WrongPassword => ErrorKind::Unauthenticated,
            SetPasswordError::RateLimited { retry_after_secs } => ErrorKind::RateLimited {
                retry_after_secs: *retry_after_secs,
            },
            SetPasswordError::Policy(_) => ErrorKind::Refused,
            SetPasswordError::Storage(_) => ErrorKind::Internal,
            SetPasswordError::EdgePending(_) => ErrorKind::Unavailable,
        }
    }
}

crate::kernel::domain_errors!(SetPasswordError);

impl From<SqlError> for SetPasswordError {
    fn from(e: SqlError) -> Self {
        SetPasswordError::Storage(e.to_string())
    }
}

impl From<PasswordRefused> for SetPasswordError {
    fn from(e: PasswordRefused) -> Self {
        match e {
            PasswordRefused::Policy(rules) => SetPasswordError::Policy(rules),
            PasswordRefused::Internal(e) => SetPasswordError::Storage(e),
        }
    }
}

/// Starts a reset (UC-AUTH-RESET step 2): if an active user has this email in this tenant, a
/// single-use token (hashed at rest, one hour) is stored, audited, and its link
/// ([`Links::password_reset`]) queued for mailing after the answer ([`crate::mail::queue`]). Says nothing about
/// whether the user exists, in what it returns or in the work it waits for: an unknown account
/// is counted against the same per-account limit, audited, and costs the same statements (the
/// token and the mail are written only if the user row is there when the batch runs). Errors
/// are returned for the log only.
pub async fn forgot_password<P: Platform>(
    p: &P,
    tenant: &TenantDomain,
    email: &Email,
    links: &Links,
    request_id: &str,
) -> Result<(), String> {
    let user = find_resettable_user(p, tenant, email)
        .await
        .map_err(|e| e.to_string())?;
    let now = p.clock().now_ms();
    let Some(held) = admit_reset_mail(p, tenant, email, now)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    let token = crypto::random_token(p.random());
    let token_hash = crypto::token_hash(&token);
    let link = links.password_reset(&token);
    let mail = crate::mail::reset_mail(email.as_str(), &link);
    let record = reset_request_record(user.as_ref(), request_id);
    // No user has the empty id: for an unknown account both INSERTs write nothing.
    let user_id = user.as_ref().map_or("", |(id, _)| id.as_str());
    let expires_at = now + RESET_TOKEN_TTL_MS;
    p.sql()
        .batch(vec![
            Stmt::new(
                "INSERT INTO password_reset_tokens (token_hash, user_id, created_at, expires_at)
                 SELECT ?1, id, ?3, ?4 FROM users WHERE id = ?2",
            )
            .bind(token_hash.as_str())
            .bind(user_id)
            .bind(now)
            .bind(expires_at),
            crate::mail::queue::enqueue_if_reset_token(&mail, &token_hash, now, expires_at),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await
        .map_err(|e| e.to_string())?;
    // A request admitted counts, whether or not a mail goes out.
    held.keep();
    Ok(())
}

/// The user id and tenant id of the active user with a password who has `email` in the
/// active tenant of `tenant`; `None` if there is none.
async fn find_resettable_user<P: Platform>(
    p: &P,
    tenant: &TenantDomain,
    email: &Email,
) -> Result<Option<(String, String)>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT u.id, u.tenant_id FROM users u JOIN tenants t ON t.id = u.tenant_id
                 WHERE t.domain = ?1 AND u.email = ?2 AND u.status = 'active'
                   AND t.status = 'active' AND u.password_hash IS NOT NULL",
            )
            .bind(tenant.as_str())
            .bind(email.as_str()),
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some((row.text("id")?, row.text("tenant_id")?))),
        None => Ok(None),
    }
}

/// Counts a reset mail on the account as typed; `None` when its limit is reached.
///
/// At most a few reset mails per account and window, so the route cannot flood an inbox.
/// Keyed on the account as typed, not the user id, so that unknown accounts are counted and
/// refused exactly like real ones. Over the limit nothing is sent, and the answer stays 202.
async fn admit_reset_mail<P: Platform>(
    p: &P,
    tenant: &TenantDomain,
    email: &Email,
    now: i64,
) -> Result<Option<throttle::Held>, SqlError> {
    let account = throttle::account_subject(tenant.as_str(), email.as_str());
    let counter = throttle::Counter::new(throttle::RESET_MAILS_PER_ACCOUNT, &account, now);
    match throttle::admit(p, vec![counter]).await? {
        throttle::Admission::Admitted(held) => Ok(Some(held)),
        throttle::Admission::Refused { .. } => Ok(None),
    }
}

/// The audit record of a reset request: a success by the `user` (user id, tenant id) found, or
/// a failure by an anonymous actor for an unknown account.
fn reset_request_record(user: Option<&(String, String)>, request_id: &str) -> AuditRecord {
    match user {
        Some((user_id, tenant_id)) => AuditRecord::success(
            "password.reset_request",
            &Actor::user(user_id),
            Some(tenant_id),
            format!("user:{user_id}"),
            Some(request_id),
        ),
        // No email in the record (PII), as for a sign-in with an unknown email.
        None => AuditRecord::failure(
            "password.reset_request",
            &Actor::user("anonymous"),
            None,
            "user",
            Some(request_id),
        )
        .with("reason", "unknown_account"),
    }
}

/// Completes a reset (UC-AUTH-RESET steps 3-5): the token is consumed (with every other reset
/// token of the user), the password set, every session revoked and every known device
/// forgotten, all in one audited batch.
pub async fn reset_password<P: Platform>(
    p: &P,
    token: &str,
    new_password: &str,
    request_id: &str,
) -> Result<(), SetPasswordError> {
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(SetPasswordError::InvalidToken);
    }
    let now = p.clock().now_ms();
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT r.user_id, u.tenant_id FROM password_reset_tokens r
                   JOIN users u ON u.id = r.user_id JOIN tenants t ON t.id = u.tenant_id
                 WHERE r.token_hash = ?1 AND r.used_at IS NULL AND r.expires_at > ?2
                   AND u.status = 'active' AND t.status = 'active'",
            )
            .bind(crypto::token_hash(token))
            .bind(now),
        )
        .await?;
    let row = rows.first().ok_or(SetPasswordError::InvalidToken)?;
    let user_id = row.text("user_id")?;
    let tenant_id = row.text("tenant_id")?;
    let hash = checked_hash(p, &tenant_id, &user_id, new_password).await?;
    let sids = active_sids(p, &user_id).await?;
    let record = AuditRecord::success(
        "password.reset",
        &Actor::user(&user_id),
        Some(&tenant_id),
        format!("user:{user_id}"),
        Some(request_id),
    )
    .with("sessions_revoked", sids.len());
    let mut stmts = vec![Stmt::new(
        "UPDATE password_reset_tokens SET used_at = ?2 WHERE user_id = ?1 AND used_at IS NULL",
    )
    .bind(user_id.as_str())
    .bind(now)];
    stmts.extend(store_password_stmts(&user_id, &hash, now));
    stmts.push(revoke_user_sessions_stmt(&user_id, "password_reset", now));
    // NFR-SEC-006: a reset forgets every known device, so whoever knew the old password signs
    // in from a new device again.
    stmts.push(Stmt::new("DELETE FROM known_devices WHERE user_id = ?1").bind(user_id.as_str()));
    stmts.push(audit::outbox_insert(&record, &audit::new_event_id(p), now));
    let counts = p.sql().batch(stmts).await?;
    if counts.first().copied().unwrap_or(0) == 0 {
        return Err(SetPasswordError::InvalidToken);
    }
    mark_sessions_revoked(p, &sids)
        .await
        .map_err(|e| SetPasswordError::EdgePending(e.to_string()))
}

/// Changes the password of a signed-in user (FR-AUTH-004) after checking the current one;
/// every session of the user, the current one included, is revoked.
pub async fn change_password<P: Platform>(
    p: &P,
    user_id: &str,
    tenant_id: &str,
    current_password: &str,
    new_password: &str,
    client: Option<&str>,
    request_id: &str,
) -> Result<(), SetPasswordError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT u.password_hash, u.email, t.domain
                 FROM users u JOIN tenants t ON t.id = u.tenant_id
                 WHERE u.id = ?1 AND u.tenant_id = ?2 AND u.status = 'active'",
            )
            .bind(user_id)
            .bind(tenant_id),
        )
        .await?;
    let Some(row) = rows.first() else {
        password::verify_nothing(current_password);
        return Err(SetPasswordError::WrongPassword);
    };
    let current = row.opt_text("password_hash")?;
    // A wrong current password is a wrong password at sign-in: the same counters, counted
    // before the check, so a stolen access token cannot guess the password here instead.
    let account = throttle::account_subject(&row.text("domain")?, &row.text("email")?);
    let counters = throttle::counters(
        (throttle::LOGIN_PER_ACCOUNT, &account),
        (throttle::LOGIN_PER_CLIENT, client),
        p.clock().now_ms(),
    );
    let held = match throttle::admit(p, counters).await? {
        throttle::Admission::Admitted(held) => held,
        throttle::Admission::Refused { retry_after_secs } => {
            return Err(SetPasswordError::RateLimited { retry_after_secs })
        }
    };
    let matches = match current {
        Some(phc) => password::verify(&phc, current_password),
        None => {
            password::verify_nothing(current_password);
            false
        }
    };
    if !matches {
        let record = AuditRecord::failure(
            "password.change",
            &Actor::user(user_id),
            Some(tenant_id),
            format!("user:{user_id}"),
            Some(request_id),
        )
        .with("reason", "wrong_password");
        audit::record_refusal(p, &record).await;
        held.keep();
        return Err(SetPasswordError::WrongPassword);
    }
    held.release(p).await?;
    let hash = checked_hash(p, tenant_id, user_id, new_password).await?;
    let now = p.clock().now_ms();
    let sids = active_sids(p, user_id).await?;
    let record = AuditRecord::success(
        "password.change",
        &Actor::user(user_id),
        Some(tenant_id),
        format!("user:{user_id}"),
        Some(request_id),
    )
    .with("sessions_revoked", sids.len());
    let mut stmts = store_password_stmts(user_id, &hash, now);
    stmts.push(revoke_user_sessions_stmt(user_id, "password_change", now));
    stmts.push(audit::outbox_insert(&record, &audit::new_event_id(p), now));
    p.sql().batch(stmts).await?;
    mark_sessions_revoked(p, &sids)
        .await
        .map_err(|e| SetPasswordError::EdgePending(e.to_string()))
}
