//! Tenant users' credentials: argon2id password hashes ([`password`]), the tenant password
//! policy ([`policy`], FR-AUTH-006), invitation acceptance ([`accept`], FR-TENANT-001) and the
//! password reset and change flows ([`reset`], FR-AUTH-004, UC-AUTH-RESET), and TOTP MFA
//! ([`mfa`] over [`totp`], NFR-SEC-003). Tenant administration by owners and admins
//! ([`admin`], [`invite`]; FR-TENANT-001..007) and data subject rights ([`privacy`],
//! CON-COMP-001).

pub mod accept;
pub mod admin;
#[cfg(test)]
mod admin_tests;
pub mod invite;
pub mod mfa;
pub mod password;
pub mod policy;
pub mod privacy;
pub mod reset;
pub mod totp;

pub use accept::{accept_invitation, AcceptInvitationError, Accepted};
pub use policy::{PasswordPolicy, PolicyRule, SetPolicyError};
pub use reset::{change_password, forgot_password, reset_password, SetPasswordError};

use crate::ports::{Platform, SqlError, Stmt};

/// Why a new password is refused before anything is written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PasswordRefused {
    /// The tenant's policy refuses it; each failed rule is listed (ERR-VAL-422).
    #[error("the password breaks the password policy")]
    Policy(Vec<PolicyRule>),
    /// Hashing or storage failed.
    #[error("{0}")]
    Internal(String),
}

impl From<SqlError> for PasswordRefused {
    fn from(e: SqlError) -> Self {
        PasswordRefused::Internal(e.to_string())
    }
}

/// Checks `new_password` against the tenant's policy (and the user's history) and returns its
/// argon2id hash.
pub(crate) async fn checked_hash<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
    new_password: &str,
) -> Result<String, PasswordRefused> {
    let policy = policy::load(p, tenant_id).await?;
    let mut broken = policy.violations(new_password);
    if broken.is_empty()
        && policy::in_history(p, user_id, policy.history_count, new_password).await?
    {
        broken.push(PolicyRule::History);
    }
    if !broken.is_empty() {
        return Err(PasswordRefused::Policy(broken));
    }
    password::hash(p.random(), new_password).map_err(|e| PasswordRefused::Internal(e.to_string()))
}

/// The statements storing a new password hash for `user_id` and recording it in the history.
pub(crate) fn store_password_stmts(user_id: &str, hash: &str, now: i64) -> Vec<Stmt> {
    vec![
        Stmt::new(
            "UPDATE users SET password_hash = ?2, password_changed_at = ?3, updated_at = ?3,
               failed_logins = 0, version = version + 1
             WHERE id = ?1",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now),
        Stmt::new(
            "INSERT INTO password_history (user_id, password_hash, created_at) VALUES (?1, ?2, ?3)",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now),
    ]
}
