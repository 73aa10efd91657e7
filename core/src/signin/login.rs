//! Password sign-in (UC-LISTEN, FR-AUTH-001). An unknown email, a wrong password, an account
//! that is not active (invited, disabled, deleted) all give the same error after the same work:
//! one argon2id computation (CON-SEC-009, ERR-AUTH-401).

use crate::audit::{self, Actor, AuditRecord};
use crate::kernel::ErrorKind;
use crate::kernel::{Email, TenantDomain};
use crate::ports::{Clock, Platform, Row, Sql, SqlError, Stmt};
use crate::risk::{self, Requirement, SignInContext};
use crate::sessions::{start, IssueError, SessionUser, TokenPair};
use crate::throttle;
use crate::tokens::SigningKeyError;
use crate::users::{password, policy};

/// A sign-in attempt, parsed.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// The tenant's domain.
    pub tenant: TenantDomain,
    /// The user's email.
    pub email: Email,
    /// The password as typed.
    pub password: String,
    /// The client's address (`CF-Connecting-IP`, or the first `X-Forwarded-For`), if known:
    /// only its hash is stored, by the rate limit.
    pub client: Option<String>,
    /// Device and location for the risk check (NFR-SEC-006); the default knows neither.
    pub context: SignInContext,
}

impl LoginRequest {
    /// A sign-in as typed. A malformed tenant domain or email cannot name an account: `None`,
    /// after the same hashing work as a real check, so that the answer (the same as a wrong
    /// password) comes no sooner and says nothing about which part was wrong.
    pub fn typed(
        tenant: &str,
        email: &str,
        password: String,
        client: Option<String>,
    ) -> Option<Self> {
        match (TenantDomain::parse(tenant), Email::parse(email)) {
            (Ok(tenant), Ok(email)) => Some(LoginRequest {
                tenant,
                email,
                password,
                context: SignInContext {
                    client: client.clone(),
                    ..SignInContext::default()
                },
                client,
            }),
            _ => {
                password::verify_nothing(&password);
                None
            }
        }
    }

    /// The same request with the device and location of the risk check (its client address
    /// is the request's when the context names none).
    #[must_use]
    pub fn with_context(mut self, mut context: SignInContext) -> Self {
        if context.client.is_none() {
            context.client.clone_from(&self.client);
        }
        self.context = context;
        self
    }
}

/// Why a sign-in failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoginError {
    /// Unknown tenant or email, wrong password, or an account that cannot sign in: never says
    /// which (ERR-AUTH-401).
    #[error("the email or password is incorrect")]
    InvalidCredentials,
    /// The credentials are right but the tenant is suspended or being deleted.
    #[error("the tenant is not active")]
    TenantNotActive,
    /// The password is right and the user has MFA: the second factor goes with this
    /// short-lived token to `/v1/auth/mfa/verify` (ERR-AUTH-461).
    #[error("a second factor is required")]
    MfaRequired {
        /// The single-use token of the pending sign-in (only its hash is stored).
        mfa_token: String,
        /// The tenant requires MFA and the user has none yet: enroll with this token
        /// (`/v1/auth/mfa/enroll`), then verify the first code.
        enroll: bool,
    },
    /// The credentials are right and the sign-in is risky (NFR-SEC-006): a one-time code was
    /// mailed to the user, to send with this token to `/v1/auth/mfa/verify` (ERR-AUTH-461).
    #[error("a one-time code from the mail is required")]
    EmailCodeRequired {
        /// The single-use token of the pending sign-in (only its hash is stored).
        mfa_token: String,
    },
    /// The credentials are right but the password is older than the tenant policy's
    /// `max_age_days` (CON-SEC-001): it must be reset (forgot password) before signing in.
    #[error("the password has expired and must be reset")]
    PasswordExpired,
    /// Too many failed attempts for the account or from the client (ERR-RATE-429).
    #[error("too many failed sign-in attempts")]
    RateLimited {
        /// Seconds until the window ends.
        retry_after_secs: i64,
    },
    /// No signing key is usable.
    #[error(transparent)]
    Signing(#[from] SigningKeyError),
    /// The database failed.
    #[error("sign-in storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl LoginError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::InvalidCredentials => "invalid_credentials",
            LoginError::TenantNotActive => "tenant_not_active",
            LoginError::MfaRequired { .. } => "mfa_required",
            LoginError::EmailCodeRequired { .. } => "email_code_required",
            LoginError::RateLimited { .. } => "rate_limited",
            LoginError::PasswordExpired => "password_expired",
            LoginError::Signing(e) => e.code(),
            LoginError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            LoginError::InvalidCredentials => ErrorKind::Unauthenticated,
            LoginError::TenantNotActive => ErrorKind::Forbidden,
            LoginError::MfaRequired { .. } => ErrorKind::SecondFactorRequired,
            LoginError::EmailCodeRequired { .. } => ErrorKind::SecondFactorRequired,
            LoginError::RateLimited { retry_after_secs } => ErrorKind::RateLimited {
                retry_after_secs: *retry_after_secs,
            },
            LoginError::PasswordExpired => ErrorKind::Refused,
            LoginError::Signing(e) => e.kind(),
            LoginError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(LoginError);

impl From<IssueError> for LoginError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Signing(e) => LoginError::Signing(e),
            IssueError::Storage(e) => LoginError::Storage(e),
            IssueError::NotActive => LoginError::InvalidCredentials,
        }
    }
}

/// Signs a user in with tenant domain, email and password and starts a session.
pub async fn login<P: Platform>(
    p: &P,
    req: &LoginRequest,
    request_id: &str,
) -> Result<TokenPair, LoginError> {
    let signed_in = authenticate(p, req, request_id).await?;
    // The risk decision that admitted it (with the address noted for the anomaly rules) is
    // recorded in the batch that starts the session.
    let attempt = Some(signed_in.attempt_id.as_str());
    let decided = signed_in.decided;
    Ok(start(p, &signed_in.user, &["pwd"], attempt, decided, request_id).await?)
}

/// A sign-in whose every check passed: its user, and the risk decision that admitted it (the
/// session started for it is recorded there).
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated {
    /// The user signing in.
    pub user: SessionUser,
    /// The `sign_in_attempts` row of the sign-in.
    pub attempt_id: String,
    /// The statements recording that decision ([`risk::Decision::writes`]): the caller puts
    /// them in the batch that starts the session or issues the code.
    pub decided: Vec<Stmt>,
}

/// Every check of [`login`] (rate limits, audit of failures, the same work for unknown users,
/// tenant status, password age, MFA) without starting a session: the universal login page
/// of the OIDC provider goes through it too, then issues a code instead (FR-AUTH-001).
pub async fn authenticate<P: Platform>(
    p: &P,
    req: &LoginRequest,
    request_id: &str,
) -> Result<Authenticated, LoginError> {
    let checked = check_credentials(p, req, request_id).await;
    if let Err(LoginError::InvalidCredentials | LoginError::RateLimited { .. }) = &checked {
        // NFR-MON-001: the tenant's count of refused sign-ins, for the burst rule.
        crate::anomalies::failed_sign_in(p, req.tenant.as_str(), p.clock().now_ms()).await;
    }
    checked
}

/// The checks of [`authenticate`], in order.
async fn check_credentials<P: Platform>(
    p: &P,
    req: &LoginRequest,
    request_id: &str,
) -> Result<Authenticated, LoginError> {
    let now = p.clock().now_ms();
    let held = admit_attempt(p, req, now, request_id).await?;
    let Some(row) = find_account(p, req).await? else {
        password::verify_nothing(&req.password);
        // Audited as well, so an unknown email costs the same write as a wrong password.
        audit::record(p, &anonymous_failure("unknown_account", request_id)).await?;
        held.keep();
        return Err(LoginError::InvalidCredentials);
    };
    let user = SessionUser {
        user_id: row.text("id")?,
        tenant_id: row.text("tenant_id")?,
        role: row.text("role")?,
    };
    check_password(p, &row, &user, &req.password, held, request_id).await?;
    if row.text("tenant_status")? != "active" {
        refuse(p, &user, "tenant_not_active", request_id).await?;
        return Err(LoginError::TenantNotActive);
    }
    let pol = policy::load(p, &user.tenant_id).await?;
    check_password_age(p, &row, &user, &pol, now, request_id).await?;
    let decision = check_risk(p, req, &row, &user, &pol, request_id).await?;
    let links_base = req.context.links_base.as_deref();
    require_second_factor(p, &row, &user, &pol, &decision, links_base).await?;
    Ok(Authenticated {
        user,
        attempt_id: decision.attempt_id,
        decided: decision.writes,
    })
}

/// NFR-SEC-006: the risk check of a sign-in whose password was right. A blocked sign-in is
/// refused exactly like a wrong password (the password hash was computed either way); a risky
/// one of a user without a second factor gets a one-time code by mail.
async fn check_risk<P: Platform>(
    p: &P,
    req: &LoginRequest,
    row: &Row,
    user: &SessionUser,
    pol: &policy::PasswordPolicy,
    request_id: &str,
) -> Result<risk::Decision, LoginError> {
    let has = row.i64("mfa_enabled")? == 1 || row.i64("has_passkey")? == 1;
    let factors = risk::Factors {
        has_second_factor: has,
        asked_anyway: has || pol.require_mfa,
        satisfied: false,
    };
    let account = throttle::account_subject(req.tenant.as_str(), req.email.as_str());
    let decision = risk::decide(
        p,
        user,
        &req.context,
        risk::SignInMethod::Password,
        Some(&account),
        factors,
        request_id,
    )
    .await?;
    match decision.requirement {
        Requirement::Block => Err(LoginError::InvalidCredentials),
        Requirement::EmailCode => {
            let mfa_token = super::mfa::email_challenge(
                p,
                user,
                req.email.as_str(),
                &decision.attempt_id,
                super::mfa::FirstFactor::Password,
                req.context.links_base.as_deref(),
            )
            .await?;
            Err(LoginError::EmailCodeRequired { mfa_token })
        }
        Requirement::Nothing | Requirement::SecondFactor => Ok(decision),
    }
}

/// Counts the attempt on the account's and the client's rate limits before the password is
/// checked, so concurrent guesses cannot all pass the limit; the right password gives its
/// place back. A refused attempt is audited.
async fn admit_attempt<P: Platform>(
    p: &P,
    req: &LoginRequest,
    now: i64,
    request_id: &str,
) -> Result<throttle::Held, LoginError> {
    let account = throttle::account_subject(req.tenant.as_str(), req.email.as_str());
    let counters = throttle::counters(
        (throttle::LOGIN_PER_ACCOUNT, &account),
        (throttle::LOGIN_PER_CLIENT, req.client.as_deref()),
        now,
    );
    match throttle::admit(p, counters).await? {
        throttle::Admission::Admitted(held) => Ok(held),
        throttle::Admission::Refused { retry_after_secs } => {
            // ERR-RATE-429: every denied attempt is audited (no email or address in it).
            audit::record(p, &anonymous_failure("rate_limited", request_id)).await?;
            Err(LoginError::RateLimited { retry_after_secs })
        }
    }
}

/// The account `req` names, with its tenant's status and whether it has a passkey; `None` if
/// the tenant or the email is unknown.
async fn find_account<P: Platform>(p: &P, req: &LoginRequest) -> Result<Option<Row>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT u.id, u.tenant_id, u.role, u.status, u.password_hash, u.mfa_enabled,
                        u.password_changed_at, t.status AS tenant_status,
                        EXISTS (SELECT 1 FROM webauthn_credentials w WHERE w.user_id = u.id)
                          AS has_passkey
                 FROM users u JOIN tenants t ON t.id = u.tenant_id
                 WHERE t.domain = ?1 AND u.email = ?2",
            )
            .bind(req.tenant.as_str())
            .bind(req.email.as_str()),
        )
        .await?;
    Ok(rows.into_iter().next())
}

/// Checks `password` against the account's hash (the same work when it has none) and that the
/// account is active. A refusal is counted, audited and keeps the attempt `held`; a match gives
/// it back.
async fn check_password<P: Platform>(
    p: &P,
    row: &Row,
    user: &SessionUser,
    password: &str,
    held: throttle::Held,
    request_id: &str,
) -> Result<(), LoginError> {
    let matches = match row.opt_text("password_hash")? {
        Some(phc) => password::verify(&phc, password),
        None => {
            password::verify_nothing(password);
            false
        }
    };
    if !matches || row.text("status")? != "active" {
        refuse(
            p,
            user,
            if matches { "inactive" } else { "password" },
            request_id,
        )
        .await?;
        held.keep();
        return Err(LoginError::InvalidCredentials);
    }
    // The password is right: whatever follows, this attempt was not a guess.
    held.release(p).await?;
    Ok(())
}

/// CON-SEC-001: past the policy's maximum age, the password must be reset first.
async fn check_password_age<P: Platform>(
    p: &P,
    row: &Row,
    user: &SessionUser,
    pol: &policy::PasswordPolicy,
    now: i64,
    request_id: &str,
) -> Result<(), LoginError> {
    if let Some(days) = pol.max_age_days {
        let changed = row.opt_i64("password_changed_at")?.unwrap_or(0);
        if changed + i64::from(days) * 24 * 3600 * 1000 <= now {
            refuse(p, user, "password_expired", request_id).await?;
            return Err(LoginError::PasswordExpired);
        }
    }
    Ok(())
}

/// NFR-SEC-003: a user with TOTP or a passkey gives a second factor; a user of a tenant that
/// requires MFA and has none enrolls first, within the same pending sign-in.
async fn require_second_factor<P: Platform>(
    p: &P,
    row: &Row,
    user: &SessionUser,
    pol: &policy::PasswordPolicy,
    decision: &risk::Decision,
    links_base: Option<&str>,
) -> Result<(), LoginError> {
    let enabled = row.i64("mfa_enabled")? == 1 || row.i64("has_passkey")? == 1;
    let stepped_up = decision.requirement == Requirement::SecondFactor;
    if enabled || pol.require_mfa || stepped_up {
        let enroll = !enabled;
        let mfa_token = super::mfa::challenge(
            p,
            user,
            enroll,
            &decision.attempt_id,
            super::mfa::FirstFactor::Password,
            links_base,
        )
        .await?;
        return Err(LoginError::MfaRequired { mfa_token, enroll });
    }
    Ok(())
}

/// The audit record of a refused sign-in whose account is not known (no email or address in
/// it).
fn anonymous_failure(reason: &str, request_id: &str) -> AuditRecord {
    AuditRecord::failure(
        "session.create",
        &Actor::user("anonymous"),
        None,
        "session",
        Some(request_id),
    )
    .with("reason", reason)
}

/// Counts a failed sign-in on the account and audits it (outcome failure), in one batch (the
/// rate limits counted the attempt before it was checked).
async fn refuse<P: Platform>(
    p: &P,
    user: &SessionUser,
    reason: &str,
    request_id: &str,
) -> Result<(), SqlError> {
    let now = p.clock().now_ms();
    let record = AuditRecord::failure(
        "session.create",
        &Actor::user(&user.user_id),
        Some(&user.tenant_id),
        format!("user:{}", user.user_id),
        Some(request_id),
    )
    .with("reason", reason);
    p.sql()
        .batch(vec![
            Stmt::new(
                "UPDATE users SET failed_logins = failed_logins + 1, updated_at = ?2 WHERE id = ?1",
            )
            .bind(user.user_id.as_str())
            .bind(now),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fr_auth_001_a_malformed_tenant_or_email_names_no_account() {
        let ok = LoginRequest::typed("Acme", "Ana@acme.example", "pw".into(), None);
        assert_eq!(
            ok.map(|r| r.tenant.as_str().to_owned()),
            Some("acme".into())
        );
        for (tenant, email) in [
            ("Not A Domain", "ana@acme.example"),
            ("acme", "not-an-email"),
        ] {
            assert!(LoginRequest::typed(tenant, email, "pw".into(), None).is_none());
        }
    }
}
