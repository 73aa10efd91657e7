//! TOTP multi-factor authentication of tenant users (NFR-SEC-003): enrollment (the secret sealed
//! under the master key in `users.totp_secret_enc`), confirmation with a first code (which
//! issues ten single-use recovery codes, stored hashed), disabling, and the second-factor check
//! of sign-in. A TOTP code is accepted once: `users.totp_last_step` only moves forward.

use serde::Serialize;
use utoipa::ToSchema;

use super::totp;
use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Random, Sql, SqlError, Stmt};
use crate::throttle;
use crate::tokens::{MasterKey, MasterKeyError};

/// How many recovery codes a confirmation issues.
pub const RECOVERY_CODES: usize = 10;

/// A started enrollment: what the authenticator app needs, shown once. (Only serialized:
/// `deny_unknown_fields` closes its schema to other properties.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TotpEnrollment)]
pub struct Enrollment {
    /// The secret, base32 (for manual entry).
    pub secret: String,
    /// The `otpauth://` URI (for a QR code).
    pub otpauth_uri: String,
}

/// Why an MFA operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MfaError {
    /// TOTP is already confirmed for this user (disable it first).
    #[error("TOTP is already enabled for this user")]
    AlreadyEnabled,
    /// No enrollment to confirm.
    #[error("no TOTP enrollment to confirm")]
    NotEnrolled,
    /// TOTP is not enabled for this user.
    #[error("TOTP is not enabled for this user")]
    NotEnabled,
    /// The code is wrong, outside the window, already used, or not a recovery code.
    #[error("the code is not valid")]
    InvalidCode,
    /// The master key is missing or invalid.
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    /// The sealed secret does not open (another master key, or tampering).
    #[error("the TOTP secret does not open under MASTER_KEY")]
    Undecryptable,
    /// Too many wrong codes for the user or from the client (ERR-RATE-429).
    #[error("too many wrong codes")]
    RateLimited {
        /// Seconds until the window ends.
        retry_after_secs: i64,
    },
    /// The database failed.
    #[error("MFA storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl MfaError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            MfaError::AlreadyEnabled => "mfa_already_enabled",
            MfaError::NotEnrolled => "mfa_not_enrolled",
            MfaError::NotEnabled => "mfa_not_enabled",
            MfaError::InvalidCode => "mfa_code_invalid",
            MfaError::MasterKey(MasterKeyError::Missing) => "master_key_missing",
            MfaError::MasterKey(MasterKeyError::Invalid) => "master_key_invalid",
            MfaError::Undecryptable => "totp_secret_undecryptable",
            MfaError::RateLimited { .. } => "rate_limited",
            MfaError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            MfaError::AlreadyEnabled => ErrorKind::Conflict,
            MfaError::NotEnrolled => ErrorKind::Conflict,
            MfaError::NotEnabled => ErrorKind::Conflict,
            MfaError::InvalidCode => ErrorKind::Refused,
            MfaError::MasterKey(MasterKeyError::Missing) => ErrorKind::Internal,
            MfaError::MasterKey(MasterKeyError::Invalid) => ErrorKind::Internal,
            MfaError::Undecryptable => ErrorKind::Internal,
            MfaError::RateLimited { retry_after_secs } => ErrorKind::RateLimited {
                retry_after_secs: *retry_after_secs,
            },
            MfaError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(MfaError);

/// Runs `check`, a check of a code of `user_id` (confirming or disabling TOTP), counted
/// against the same limits of wrong second factors as sign-in's second step, per user and per
/// client: the attempt is counted before `check` runs (it starts only when awaited), stays
/// counted when the code is wrong and is given back otherwise.
pub async fn limited<P: Platform, T>(
    p: &P,
    user_id: &str,
    client: Option<&str>,
    check: impl std::future::Future<Output = Result<T, MfaError>>,
) -> Result<T, MfaError> {
    let counters = throttle::counters(
        (throttle::MFA_PER_ACCOUNT, user_id),
        (throttle::MFA_PER_CLIENT, client),
        p.clock().now_ms(),
    );
    let held = match throttle::admit(p, counters).await? {
        throttle::Admission::Admitted(held) => held,
        throttle::Admission::Refused { retry_after_secs } => {
            return Err(MfaError::RateLimited { retry_after_secs })
        }
    };
    let outcome = check.await;
    if matches!(outcome, Err(MfaError::InvalidCode)) {
        held.keep();
    } else {
        held.release(p).await?;
    }
    outcome
}

pub(crate) fn context(user_id: &str) -> String {
    format!("totp:{user_id}")
}

struct TotpState {
    enabled: bool,
    sealed: Option<String>,
    email: String,
}

async fn state<P: Platform>(p: &P, user_id: &str, tenant_id: &str) -> Result<TotpState, MfaError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT mfa_enabled, totp_secret_enc, email FROM users
                 WHERE id = ?1 AND tenant_id = ?2 AND status = 'active'",
            )
            .bind(user_id)
            .bind(tenant_id),
        )
        .await?;
    let row = rows.first().ok_or(MfaError::NotEnabled)?;
    Ok(TotpState {
        enabled: row.i64("mfa_enabled")? == 1,
        sealed: row.opt_text("totp_secret_enc")?,
        email: row.opt_text("email")?.unwrap_or_default(),
    })
}

fn open(master: &MasterKey, user_id: &str, sealed: &str) -> Result<Vec<u8>, MfaError> {
    master
        .open(&context(user_id), sealed)
        .map_err(|_| MfaError::Undecryptable)
}

fn record(action: &'static str, user_id: &str, tenant_id: &str, request_id: &str) -> AuditRecord {
    AuditRecord::success(
        action,
        &Actor::user(user_id),
        Some(tenant_id),
        format!("user:{user_id}"),
        Some(request_id),
    )
}

/// Starts (or restarts) an enrollment: a fresh 160-bit secret from the Random port, sealed;
/// TOTP stays off until [`confirm`].
pub async fn enroll<P: Platform>(
    p: &P,
    user_id: &str,
    tenant_id: &str,
    request_id: &str,
) -> Result<Enrollment, MfaError> {
    let master = MasterKey::load(p.secrets())?;
    let st = state(p, user_id, tenant_id).await?;
    if st.enabled {
        return Err(MfaError::AlreadyEnabled);
    }
    let mut secret = [0u8; totp::SECRET_BYTES];
    p.random().fill(&mut secret);
    let sealed = master.seal(p.random(), &context(user_id), &secret);
    let now = p.clock().now_ms();
    let rec = record("mfa.totp.enroll", user_id, tenant_id, request_id);
    let counts = p
        .sql()
        .batch(vec![
            Stmt::new(
                "UPDATE users SET totp_secret_enc = ?2, totp_last_step = NULL, updated_at = ?3
                 WHERE id = ?1 AND mfa_enabled = 0",
            )
            .bind(user_id)
            .bind(sealed)
            .bind(now),
            audit::outbox_insert(&rec, &audit::new_event_id(p), now),
        ])
        .await?;
    if counts.first().copied() != Some(1) {
        return Err(MfaError::AlreadyEnabled);
    }
    Ok(Enrollment {
        secret: totp::base32(&secret),
        otpauth_uri: totp::otpauth_uri("Edgeplane", &st.email, &secret),
    })
}

/// Confirms an enrollment with a current code: TOTP is on from now, and ten fresh recovery
/// codes (returned once, stored hashed) replace any earlier ones.
pub async fn confirm<P: Platform>(
    p: &P,
    user_id: &str,
    tenant_id: &str,
    code: &str,
    request_id: &str,
) -> Result<Vec<String>, MfaError> {
    let master = MasterKey::load(p.secrets())?;
    let st = state(p, user_id, tenant_id).await?;
    if st.enabled {
        return Err(MfaError::AlreadyEnabled);
    }
    let sealed = st.sealed.ok_or(MfaError::NotEnrolled)?;
    let secret = open(&master, user_id, &sealed)?;
    let now = p.clock().now_ms();
    let step =
        totp::matching_step(&secret, code, now.div_euclid(1000)).ok_or(MfaError::InvalidCode)?;
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| recovery_code(p.random()))
        .collect();
    // Two confirmations may race (a double submit): every statement is guarded by TOTP still
    // being off, and the one turning it on comes last, so the batch that loses changes nothing
    // (its codes would replace the ones the winner showed).
    let mut stmts = vec![Stmt::new(
        "DELETE FROM mfa_recovery_codes
         WHERE user_id = ?1 AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND mfa_enabled = 0)",
    )
    .bind(user_id)];
    for c in &codes {
        stmts.push(
            Stmt::new(
                "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at)
                 SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1 AND mfa_enabled = 0)",
            )
            .bind(user_id)
            .bind(recovery_hash(c))
            .bind(now),
        );
    }
    let rec = record("mfa.totp.confirm", user_id, tenant_id, request_id);
    stmts.push(
        audit::outbox_insert_where(
            &rec,
            &audit::new_event_id(p),
            now,
            concat!(
                crate::audit_outbox_columns!(),
                " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
                 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?11 AND mfa_enabled = 0)"
            ),
        )
        .bind(user_id),
    );
    let turn_on = stmts.len();
    stmts.push(
        Stmt::new(
            "UPDATE users SET mfa_enabled = 1, totp_last_step = ?2, updated_at = ?3
             WHERE id = ?1 AND mfa_enabled = 0",
        )
        .bind(user_id)
        .bind(step)
        .bind(now),
    );
    let counts = p.sql().batch(stmts).await?;
    if counts.get(turn_on).copied() != Some(1) {
        return Err(MfaError::AlreadyEnabled);
    }
    Ok(codes)
}

/// Turns TOTP off after checking a current code (TOTP or recovery), removing the secret and
/// the recovery codes.
pub async fn disable<P: Platform>(
    p: &P,
    user_id: &str,
    tenant_id: &str,
    code: &str,
    request_id: &str,
) -> Result<(), MfaError> {
    if !state(p, user_id, tenant_id).await?.enabled {
        return Err(MfaError::NotEnabled);
    }
    check_second_factor(p, user_id, code).await?;
    let now = p.clock().now_ms();
    let rec = record("mfa.totp.disable", user_id, tenant_id, request_id);
    p.sql()
        .batch(vec![
            Stmt::new(
                "UPDATE users SET mfa_enabled = 0, totp_secret_enc = NULL, totp_last_step = NULL,
                   updated_at = ?2
                 WHERE id = ?1",
            )
            .bind(user_id)
            .bind(now),
            Stmt::new("DELETE FROM mfa_recovery_codes WHERE user_id = ?1").bind(user_id),
            audit::outbox_insert(&rec, &audit::new_event_id(p), now),
        ])
        .await?;
    Ok(())
}

/// Checks a second factor of an MFA user and uses it up: a 6-digit TOTP code within one step
/// of now and newer than the last accepted one (no replay), or an unused recovery code.
/// Returns the method (`otp` or `recovery`).
pub async fn check_second_factor<P: Platform>(
    p: &P,
    user_id: &str,
    code: &str,
) -> Result<&'static str, MfaError> {
    let code = code.trim();
    if code.len() == totp::DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit()) {
        let master = MasterKey::load(p.secrets())?;
        let rows = p
            .sql()
            .query(
                Stmt::new("SELECT totp_secret_enc FROM users WHERE id = ?1 AND mfa_enabled = 1")
                    .bind(user_id),
            )
            .await?;
        let sealed = rows
            .first()
            .map(|r| r.opt_text("totp_secret_enc"))
            .transpose()?
            .flatten()
            .ok_or(MfaError::NotEnabled)?;
        let secret = open(&master, user_id, &sealed)?;
        let step = totp::matching_step(&secret, code, p.clock().now_ms().div_euclid(1000))
            .ok_or(MfaError::InvalidCode)?;
        let used = p
            .sql()
            .execute(
                Stmt::new(
                    "UPDATE users SET totp_last_step = ?2
                     WHERE id = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
                )
                .bind(user_id)
                .bind(step),
            )
            .await?;
        return if used == 1 {
            Ok("otp")
        } else {
            Err(MfaError::InvalidCode)
        };
    }
    if code.is_empty() || code.len() > 32 {
        return Err(MfaError::InvalidCode);
    }
    let used = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE mfa_recovery_codes SET used_at = ?3
                 WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
            )
            .bind(user_id)
            .bind(recovery_hash(code))
            .bind(p.clock().now_ms()),
        )
        .await?;
    if used == 1 {
        Ok("recovery")
    } else {
        Err(MfaError::InvalidCode)
    }
}

/// A recovery code: ten base32 characters (50 bits) as `xxxxx-xxxxx`, lowercase.
fn recovery_code<R: Random + ?Sized>(random: &R) -> String {
    let mut bytes = [0u8; 7];
    random.fill(&mut bytes);
    let s = totp::base32(&bytes).to_ascii_lowercase();
    format!("{}-{}", &s[..5], &s[5..10])
}

/// The stored hash of a recovery code, ignoring case, spaces and dashes.
fn recovery_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    crypto::token_hash(&normal)
}
