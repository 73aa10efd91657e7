//! The second step of an MFA sign-in (NFR-SEC-003, ERR-AUTH-461): a password sign-in of an
//! MFA user leaves an `auth_flows` row (kind `mfa`, keyed by the hash of the token handed to the
//! client); `/v1/auth/mfa/verify` consumes it with a TOTP or recovery code and starts the session.

use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::PartialSchema;

use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};
use crate::sessions::{start, IssueError, SessionUser, TokenPair};
use crate::throttle;
use crate::tokens::SigningKeyError;
use crate::users::mfa::{self, check_second_factor, Enrollment, MfaError};
use crate::webauthn::{self, AuthenticationResponse, Options, RelyingParty, WebAuthnError};

/// How long the second factor may take: 5 minutes.
pub const MFA_TOKEN_TTL_MS: i64 = 5 * 60 * 1000;
/// How long a mailed one-time code may take to arrive and be typed: 10 minutes
/// (NFR-SEC-006).
pub const EMAIL_CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// Digits of a mailed one-time code (a pending sign-in allows [`MAX_MFA_ATTEMPTS`] guesses).
const EMAIL_CODE_DIGITS: u32 = 8;
/// Wrong codes allowed per pending sign-in before it is dead.
pub const MAX_MFA_ATTEMPTS: i64 = 5;

/// Why the second step failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerifyMfaError {
    /// Unknown, used, expired or exhausted MFA token: sign in again.
    #[error("the MFA token is not valid: sign in again")]
    InvalidToken,
    /// The code is wrong, already used or outside the window.
    #[error("the code is not valid")]
    InvalidCode,
    /// Too many wrong codes for the user or from the client (ERR-RATE-429).
    #[error("too many wrong codes")]
    RateLimited {
        /// Seconds until the window ends.
        retry_after_secs: i64,
    },
    /// The master key is missing or the secret does not open.
    #[error("MFA check unavailable: {0}")]
    Unavailable(String),
    /// No signing key is usable.
    #[error(transparent)]
    Signing(#[from] SigningKeyError),
    /// The database failed.
    #[error("MFA storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl VerifyMfaError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyMfaError::InvalidToken => "mfa_token_invalid",
            VerifyMfaError::InvalidCode => "mfa_code_invalid",
            VerifyMfaError::RateLimited { .. } => "rate_limited",
            VerifyMfaError::Unavailable(_) => "mfa_unavailable",
            VerifyMfaError::Signing(e) => e.code(),
            VerifyMfaError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            VerifyMfaError::InvalidToken => ErrorKind::Unauthenticated,
            VerifyMfaError::InvalidCode => ErrorKind::Unauthenticated,
            VerifyMfaError::RateLimited { retry_after_secs } => ErrorKind::RateLimited {
                retry_after_secs: *retry_after_secs,
            },
            VerifyMfaError::Unavailable(_) => ErrorKind::Internal,
            VerifyMfaError::Signing(e) => e.kind(),
            VerifyMfaError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(VerifyMfaError);

impl From<IssueError> for VerifyMfaError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Signing(e) => VerifyMfaError::Signing(e),
            IssueError::Storage(e) => VerifyMfaError::Storage(e),
            IssueError::NotActive => VerifyMfaError::InvalidToken,
        }
    }
}

/// How a pending sign-in began: the first entry of its `amr` once the second factor is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstFactor {
    /// The password (`pwd`).
    Password,
    /// The tenant's identity provider (`sso`), stepped up by the risk check (NFR-SEC-006).
    Sso,
}

impl FirstFactor {
    /// Its `amr` value, also what the pending sign-in stores.
    pub fn amr(self) -> &'static str {
        match self {
            FirstFactor::Password => "pwd",
            FirstFactor::Sso => "sso",
        }
    }

    /// The stored value read back; anything else is a password sign-in (the older rows).
    fn stored(v: &serde_json::Value) -> Self {
        if v.as_str() == Some("sso") {
            FirstFactor::Sso
        } else {
            FirstFactor::Password
        }
    }
}

/// Records a pending MFA sign-in of `user`; returns the token for the client.
/// With `enroll`, the user has no second factor yet and enrolls within this pending sign-in.
/// `attempt` is the sign-in's risk decision, completed when the factor is given; `links_base`
/// where the links of its notice point ([`crate::risk::SignInContext::links_base`]).
pub(super) async fn challenge<P: Platform>(
    p: &P,
    user: &SessionUser,
    enroll: bool,
    attempt: &str,
    first: FirstFactor,
    links_base: Option<&str>,
) -> Result<String, SqlError> {
    let now = p.clock().now_ms();
    let token = crypto::random_token(p.random());
    let data = serde_json::json!({
        "enroll": enroll,
        "attempt": attempt,
        "first": first.amr(),
        "links_base": links_base,
    });
    p.sql()
        .execute(flow_insert(
            &token,
            user,
            &data,
            now,
            now + MFA_TOKEN_TTL_MS,
        ))
        .await?;
    Ok(token)
}

/// The INSERT of a pending MFA sign-in keyed by `token`'s hash.
fn flow_insert(
    token: &str,
    user: &SessionUser,
    data: &serde_json::Value,
    now: i64,
    expires_at: i64,
) -> Stmt {
    Stmt::new(
        "INSERT INTO auth_flows (token_hash, kind, tenant_id, user_id, data, created_at,
           expires_at)
         VALUES (?1, 'mfa', ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(crypto::token_hash(token))
    .bind(user.tenant_id.as_str())
    .bind(user.user_id.as_str())
    .bind(data.to_string())
    .bind(now)
    .bind(expires_at)
}

/// The stored hash of a mailed code for the pending sign-in `flow_hash`: bound to the sign-in,
/// so the same code of another sign-in hashes differently.
fn email_code_hash(flow_hash: &str, code: &str) -> String {
    crypto::sha256_hex(format!("email-code|{flow_hash}|{code}").as_bytes())
}

/// A risky sign-in of a user without a second factor (NFR-SEC-006): records a pending sign-in
/// holding the hash of a fresh one-time code (single use, [`EMAIL_CODE_TTL_MS`],
/// [`MAX_MFA_ATTEMPTS`] guesses) and queues the code's mail to `email` in the same batch;
/// returns the token for the client.
pub(super) async fn email_challenge<P: Platform>(
    p: &P,
    user: &SessionUser,
    email: &str,
    attempt: &str,
    first: FirstFactor,
    links_base: Option<&str>,
) -> Result<String, SqlError> {
    let now = p.clock().now_ms();
    let token = crypto::random_token(p.random());
    let code = random_code(p);
    let data = serde_json::json!({
        "enroll": false,
        "attempt": attempt,
        "first": first.amr(),
        "links_base": links_base,
        "email_code": email_code_hash(&crypto::token_hash(&token), &code),
    });
    let expires_at = now + EMAIL_CODE_TTL_MS;
    let mail = crate::mail::sign_in_code_mail(email, &code);
    p.sql()
        .batch(vec![
            flow_insert(&token, user, &data, now, expires_at),
            crate::mail::queue::enqueue(&mail, now, expires_at),
        ])
        .await?;
    Ok(token)
}

/// A uniformly random code of [`EMAIL_CODE_DIGITS`] digits.
fn random_code<P: Platform>(p: &P) -> String {
    let modulus = 10u64.pow(EMAIL_CODE_DIGITS);
    // Rejection sampling keeps every code equally likely.
    let limit = u64::MAX - u64::MAX % modulus;
    loop {
        let mut b = [0u8; 8];
        crate::ports::Random::fill(p.random(), &mut b);
        let n = u64::from_le_bytes(b);
        if n < limit {
            return format!(
                "{:0width$}",
                n % modulus,
                width = EMAIL_CODE_DIGITS as usize
            );
        }
    }
}

/// A live pending sign-in: its user, how it began, whether it is an enrollment, its risk
/// decision (and where the links of its notice point), and the hash of its mailed code when it
/// waits for one.
struct Pending {
    user: SessionUser,
    first: FirstFactor,
    enroll: bool,
    attempt: Option<String>,
    links_base: Option<String>,
    email_code: Option<String>,
}

async fn pending<P: Platform>(p: &P, hash: &str, now: i64) -> Result<Pending, VerifyMfaError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT f.user_id, f.tenant_id, f.attempts, f.data, u.role
                 FROM auth_flows f JOIN users u ON u.id = f.user_id
                   JOIN tenants t ON t.id = f.tenant_id
                 WHERE f.token_hash = ?1 AND f.kind = 'mfa' AND f.consumed_at IS NULL
                   AND f.expires_at > ?2 AND u.status = 'active' AND t.status = 'active'",
            )
            .bind(hash)
            .bind(now),
        )
        .await?;
    let row = rows.first().ok_or(VerifyMfaError::InvalidToken)?;
    let attempts = row.i64("attempts")?;
    if attempts >= MAX_MFA_ATTEMPTS {
        return Err(VerifyMfaError::InvalidToken);
    }
    let data: serde_json::Value = serde_json::from_str(&row.text("data")?).unwrap_or_default();
    Ok(Pending {
        user: SessionUser {
            user_id: row.text("user_id")?,
            tenant_id: row.text("tenant_id")?,
            role: row.text("role")?,
        },
        first: FirstFactor::stored(&data["first"]),
        enroll: data["enroll"] == serde_json::Value::Bool(true),
        attempt: data["attempt"].as_str().map(str::to_owned),
        links_base: data["links_base"].as_str().map(str::to_owned),
        email_code: data["email_code"].as_str().map(str::to_owned),
    })
}

/// The audit record of a refused second factor of `user`.
fn failure(user: &SessionUser, request_id: &str) -> AuditRecord {
    AuditRecord::failure(
        "session.mfa_verify",
        &Actor::user(&user.user_id),
        Some(&user.tenant_id),
        format!("user:{}", user.user_id),
        Some(request_id),
    )
}

/// Counts one attempt on the pending sign-in `hash` if it is still live and has attempts left,
/// in one conditional statement before the code is checked: concurrent requests cannot share
/// one remaining attempt. False when nothing is left.
async fn count_attempt<P: Platform>(p: &P, hash: &str, now: i64) -> Result<bool, SqlError> {
    let changed = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE auth_flows SET attempts = attempts + 1
                 WHERE token_hash = ?1 AND kind = 'mfa' AND consumed_at IS NULL
                   AND expires_at > ?2 AND attempts < ?3",
            )
            .bind(hash)
            .bind(now)
            .bind(MAX_MFA_ATTEMPTS),
        )
        .await?;
    Ok(changed == 1)
}

/// Enrollment within a pending sign-in of a tenant that requires MFA (NFR-SEC-003): the
/// secret and `otpauth://` URI; the first code then goes to [`verify_mfa`].
pub async fn enroll_during_sign_in<P: Platform>(
    p: &P,
    mfa_token: &str,
    request_id: &str,
) -> Result<Enrollment, VerifyMfaError> {
    if mfa_token.is_empty() || mfa_token.len() > 128 {
        return Err(VerifyMfaError::InvalidToken);
    }
    let pending = pending(p, &crypto::token_hash(mfa_token), p.clock().now_ms()).await?;
    if !pending.enroll {
        return Err(VerifyMfaError::InvalidToken);
    }
    let u = &pending.user;
    mfa::enroll(p, &u.user_id, &u.tenant_id, request_id)
        .await
        .map_err(|e| match e {
            MfaError::Storage(e) => VerifyMfaError::Storage(e),
            MfaError::AlreadyEnabled => VerifyMfaError::InvalidToken,
            other => VerifyMfaError::Unavailable(other.to_string()),
        })
}

/// A completed MFA sign-in: the session's tokens, and the recovery codes after an enrollment
/// during sign-in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MfaSignIn {
    /// The session's tokens.
    #[serde(flatten)]
    pub tokens: TokenPair,
    /// After an enrollment during sign-in: the ten recovery codes, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// Written by hand: the derive would describe the flattened tokens as an `allOf` with
/// [`TokenPair`]; this is one object with the token pair's properties and `recovery_codes`.
impl PartialSchema for MfaSignIn {
    fn schema() -> RefOr<Schema> {
        let mut object = match TokenPair::schema() {
            RefOr::T(Schema::Object(o)) => o,
            _ => Object::new(),
        };
        object.description = Some(
            "A completed MFA sign-in: the session's tokens, and the recovery codes after an \
             enrollment during sign-in."
                .to_owned(),
        );
        // The document leaves this answer open to other properties, unlike the token pair.
        object.additional_properties = None;
        object.properties.insert(
            "recovery_codes".to_owned(),
            ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(
                    "Only after an enrollment during sign-in: ten single-use codes, shown once.",
                ))
                .into(),
        );
        RefOr::T(Schema::Object(object))
    }
}

impl utoipa::ToSchema for MfaSignIn {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("MfaSignIn")
    }
}

/// A second factor presented to `/v1/auth/mfa/verify`.
#[derive(Debug, Clone, Copy)]
pub enum SecondFactor<'a> {
    /// A TOTP or recovery code.
    Code(&'a str),
    /// A passkey assertion answering [`webauthn_options`] (NFR-SEC-003).
    Passkey(&'a AuthenticationResponse),
}

/// Completes an MFA sign-in: the pending sign-in must be live, the code right (and unused);
/// then the pending sign-in is consumed and the session starts (`amr`: pwd or sso, then otp).
pub async fn verify_mfa<P: Platform>(
    p: &P,
    mfa_token: &str,
    code: &str,
    client: Option<&str>,
    request_id: &str,
) -> Result<MfaSignIn, VerifyMfaError> {
    verify_mfa_with(p, mfa_token, SecondFactor::Code(code), client, request_id).await
}

/// Passkey options for the second factor of a pending sign-in (NFR-SEC-003): the user's
/// passkeys, a challenge bound to this `mfa_token`. An unusable token is
/// [`WebAuthnError::InvalidFlow`].
pub async fn webauthn_options<P: Platform>(
    p: &P,
    mfa_token: &str,
    rp: &RelyingParty,
) -> Result<Options, WebAuthnError> {
    if mfa_token.is_empty() || mfa_token.len() > 128 {
        return Err(WebAuthnError::InvalidFlow);
    }
    let hash = crypto::token_hash(mfa_token);
    let pending = pending(p, &hash, p.clock().now_ms())
        .await
        .map_err(|e| match e {
            VerifyMfaError::Storage(e) => WebAuthnError::Storage(e),
            _ => WebAuthnError::InvalidFlow,
        })?;
    if pending.enroll || pending.email_code.is_some() {
        return Err(WebAuthnError::NoPasskey);
    }
    webauthn::mfa_options(p, &pending.user, &hash, rp).await
}

/// [`verify_mfa`] with a code or a passkey (`amr`: pwd or sso, then otp | recovery | hwk |
/// email).
pub async fn verify_mfa_with<P: Platform>(
    p: &P,
    mfa_token: &str,
    factor: SecondFactor<'_>,
    client: Option<&str>,
    request_id: &str,
) -> Result<MfaSignIn, VerifyMfaError> {
    let done = verify_second_factor(p, mfa_token, factor, client, request_id).await?;
    let attempt = done.attempt_id.as_deref();
    // The decision was recorded when the sign-in was held for its step-up.
    let tokens = start(
        p,
        &done.user,
        &done.methods(),
        attempt,
        Vec::new(),
        request_id,
    )
    .await?;
    let (user, now) = (&done.user, p.clock().now_ms());
    crate::anomalies::signed_in(p, &user.tenant_id, &user.user_id, client, now).await;
    Ok(MfaSignIn {
        tokens,
        recovery_codes: done.recovery_codes,
    })
}

/// A second factor checked and its pending sign-in consumed, before any session starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedFactor {
    /// The user signing in.
    pub user: SessionUser,
    /// How the sign-in began (password, or SSO stepped up).
    pub first: FirstFactor,
    /// The method used (`otp`, `hwk`, `email`, or the recovery code method).
    pub method: &'static str,
    /// After an enrollment during sign-in: the recovery codes, shown once.
    pub recovery_codes: Option<Vec<String>>,
    /// The sign-in's risk decision (the session started for it is recorded there).
    pub attempt_id: Option<String>,
}

impl CheckedFactor {
    /// The sign-in's `amr`: how it began, then the factor given.
    pub fn methods(&self) -> [&'static str; 2] {
        [self.first.amr(), self.method]
    }
}

/// Every check of [`verify_mfa_with`] without starting a session: the universal login page of
/// the OIDC provider goes through it too, then issues a code instead (FR-AUTH-001).
pub async fn verify_second_factor<P: Platform>(
    p: &P,
    mfa_token: &str,
    factor: SecondFactor<'_>,
    client: Option<&str>,
    request_id: &str,
) -> Result<CheckedFactor, VerifyMfaError> {
    if mfa_token.is_empty() || mfa_token.len() > 128 {
        return Err(VerifyMfaError::InvalidToken);
    }
    let now = p.clock().now_ms();
    let hash = crypto::token_hash(mfa_token);
    let pending = pending(p, &hash, now).await?;
    let user = pending.user;
    let held = admit_code(p, &user, client, now, request_id).await?;
    if !count_attempt(p, &hash, now).await? {
        held.release(p).await?;
        return Err(VerifyMfaError::InvalidToken);
    }
    let checked = match &pending.email_code {
        Some(expected) => check_email_code(expected, factor, &hash),
        None => check_factor(p, &user, pending.enroll, factor, &hash, request_id).await,
    };
    let (method, recovery_codes) = match checked {
        Ok(v) => v,
        Err(MfaError::InvalidCode | MfaError::NotEnabled | MfaError::NotEnrolled) => {
            audit::record(p, &failure(&user, request_id)).await?;
            held.keep();
            return Err(VerifyMfaError::InvalidCode);
        }
        Err(MfaError::Storage(e)) => return Err(VerifyMfaError::Storage(e)),
        Err(e) => return Err(VerifyMfaError::Unavailable(e.to_string())),
    };
    held.release(p).await?;
    if !consume_pending(p, &hash, now).await? {
        return Err(VerifyMfaError::InvalidToken);
    }
    if let Some(attempt) = &pending.attempt {
        crate::risk::complete(p, attempt, pending.links_base.as_deref()).await?;
    }
    Ok(CheckedFactor {
        user,
        first: pending.first,
        method,
        recovery_codes,
        attempt_id: pending.attempt,
    })
}

/// Counts a code of `user` from `client` on the rate limits before it is checked; a refused
/// attempt is audited.
///
/// Every code is counted before it is checked: per user across all their pending sign-ins
/// (a fresh password sign-in does not buy fresh guesses), per client, and per pending
/// sign-in. A valid code gives the user's and the client's places back.
async fn admit_code<P: Platform>(
    p: &P,
    user: &SessionUser,
    client: Option<&str>,
    now: i64,
    request_id: &str,
) -> Result<throttle::Held, VerifyMfaError> {
    let counters = throttle::counters(
        (throttle::MFA_PER_ACCOUNT, &user.user_id),
        (throttle::MFA_PER_CLIENT, client),
        now,
    );
    match throttle::admit(p, counters).await? {
        throttle::Admission::Admitted(held) => Ok(held),
        throttle::Admission::Refused { retry_after_secs } => {
            let record = failure(user, request_id).with("reason", "rate_limited");
            audit::record(p, &record).await?;
            Err(VerifyMfaError::RateLimited { retry_after_secs })
        }
    }
}

/// Checks `factor` for the pending sign-in `hash` of `user`; returns the method used and, when
/// the sign-in is an enrollment (`enroll`), the recovery codes of the confirmed enrollment.
async fn check_factor<P: Platform>(
    p: &P,
    user: &SessionUser,
    enroll: bool,
    factor: SecondFactor<'_>,
    hash: &str,
    request_id: &str,
) -> Result<(&'static str, Option<Vec<String>>), MfaError> {
    match factor {
        SecondFactor::Code(code) if enroll => {
            mfa::confirm(p, &user.user_id, &user.tenant_id, code, request_id)
                .await
                .map(|codes| ("otp", Some(codes)))
        }
        SecondFactor::Code(code) => check_second_factor(p, &user.user_id, code)
            .await
            .map(|m| (m, None)),
        // An enrollment has no passkey to check yet.
        SecondFactor::Passkey(_) if enroll => Err(MfaError::NotEnabled),
        SecondFactor::Passkey(resp) => {
            match webauthn::check_second_factor(p, user, hash, resp, request_id).await {
                Ok(m) => Ok((m, None)),
                Err(WebAuthnError::Storage(e)) => Err(MfaError::Storage(e)),
                Err(_) => Err(MfaError::InvalidCode),
            }
        }
    }
}

/// Checks a mailed one-time code against the pending sign-in's `expected` hash, in constant
/// time; a passkey is no answer to it.
fn check_email_code(
    expected: &str,
    factor: SecondFactor<'_>,
    flow_hash: &str,
) -> Result<(&'static str, Option<Vec<String>>), MfaError> {
    let SecondFactor::Code(code) = factor else {
        return Err(MfaError::InvalidCode);
    };
    let given = email_code_hash(flow_hash, code.trim());
    // Constant time: every byte is compared whatever the first difference.
    let differs = given.len() != expected.len()
        || given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0;
    if !differs {
        Ok(("email", None))
    } else {
        Err(MfaError::InvalidCode)
    }
}

/// Consumes the pending sign-in `hash`; false if another request consumed it first.
async fn consume_pending<P: Platform>(p: &P, hash: &str, now: i64) -> Result<bool, SqlError> {
    let consumed = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE auth_flows SET consumed_at = ?2 WHERE token_hash = ?1 AND consumed_at IS NULL",
            )
            .bind(hash)
            .bind(now),
        )
        .await?;
    Ok(consumed == 1)
}
