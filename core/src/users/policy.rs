//! Per-tenant password policy (FR-AUTH-006, CON-SEC-001): minimum length, character classes,
//! maximum age, history, and a shipped list of the most common passwords. Checked on every set
//! (invitation acceptance, reset, change); a refusal names each rule that failed (ERR-VAL-422).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::password;
use crate::audit::{self, Actor, AuditRecord};
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};

/// Longest password accepted, in characters (argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// The most common passwords of 8 characters or more, lowercase (see the file's header).
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// A tenant's password rules. No row in `password_policies` means [`PasswordPolicy::default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicy {
    /// Fewest characters (8 to 128).
    #[schema(minimum = 8, maximum = 128)]
    pub min_length: u32,
    /// Needs an upper-case letter.
    pub require_upper: bool,
    /// Needs a lower-case letter.
    pub require_lower: bool,
    /// Needs a digit.
    pub require_digit: bool,
    /// Needs a character that is neither a letter nor a digit.
    pub require_symbol: bool,
    /// Days after which a password must be changed (1 to 3650); null: never.
    #[schema(required = true, minimum = 1, maximum = 3650)]
    pub max_age_days: Option<u32>,
    /// How many previous passwords may not be reused (0 to 24).
    #[schema(maximum = 24)]
    pub history_count: u32,
    /// Every user must sign in with a second factor (NFR-SEC-003); users without one enroll
    /// during sign-in.
    #[serde(default)]
    #[schema(default = false)]
    pub require_mfa: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 12,
            require_upper: false,
            require_lower: false,
            require_digit: false,
            require_symbol: false,
            max_age_days: None,
            history_count: 0,
            require_mfa: false,
        }
    }
}

/// One rule a password failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyRule {
    /// Shorter than `min_length`.
    MinLength,
    /// Longer than [`MAX_PASSWORD_CHARS`].
    MaxLength,
    /// No upper-case letter.
    Upper,
    /// No lower-case letter.
    Lower,
    /// No digit.
    Digit,
    /// No symbol.
    Symbol,
    /// On the common-password list.
    Common,
    /// One of the last `history_count` passwords.
    History,
}

impl PolicyRule {
    /// The stable name the API reports.
    pub fn code(self) -> &'static str {
        match self {
            PolicyRule::MinLength => "min_length",
            PolicyRule::MaxLength => "max_length",
            PolicyRule::Upper => "require_upper",
            PolicyRule::Lower => "require_lower",
            PolicyRule::Digit => "require_digit",
            PolicyRule::Symbol => "require_symbol",
            PolicyRule::Common => "common_password",
            PolicyRule::History => "history",
        }
    }
}

/// Why a policy could not be set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SetPolicyError {
    /// A field is out of range (`field`, `message`).
    #[error("{0}: {1}")]
    Invalid(&'static str, &'static str),
    /// The database failed.
    #[error("password policy storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl SetPolicyError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            SetPolicyError::Invalid(..) => "invalid_policy",
            SetPolicyError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            SetPolicyError::Invalid(field, _) => ErrorKind::InvalidField(field),
            SetPolicyError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(SetPolicyError);

impl PasswordPolicy {
    /// Checks the ranges the schema enforces, before any write.
    pub fn validate(&self) -> Result<(), SetPolicyError> {
        if !(8..=128).contains(&self.min_length) {
            return Err(SetPolicyError::Invalid(
                "min_length",
                "must be between 8 and 128",
            ));
        }
        if self.history_count > 24 {
            return Err(SetPolicyError::Invalid(
                "history_count",
                "must be between 0 and 24",
            ));
        }
        if self.max_age_days.is_some_and(|d| d == 0 || d > 3650) {
            return Err(SetPolicyError::Invalid(
                "max_age_days",
                "must be null or between 1 and 3650",
            ));
        }
        Ok(())
    }

    /// The rules `password` breaks, apart from history (which needs the stored hashes): empty
    /// when it is acceptable.
    pub fn violations(&self, password: &str) -> Vec<PolicyRule> {
        let mut out = Vec::new();
        let chars = password.chars().count();
        if chars < self.min_length as usize {
            out.push(PolicyRule::MinLength);
        }
        if chars > MAX_PASSWORD_CHARS {
            out.push(PolicyRule::MaxLength);
        }
        let checks = [
            (
                self.require_upper,
                PolicyRule::Upper,
                char::is_uppercase as fn(char) -> bool,
            ),
            (self.require_lower, PolicyRule::Lower, char::is_lowercase),
            (self.require_digit, PolicyRule::Digit, |c: char| {
                c.is_ascii_digit()
            }),
            (self.require_symbol, PolicyRule::Symbol, |c: char| {
                !c.is_alphanumeric()
            }),
        ];
        for (required, rule, test) in checks {
            if required && !password.chars().any(test) {
                out.push(rule);
            }
        }
        if is_common(password) {
            out.push(PolicyRule::Common);
        }
        out
    }
}

/// Whether `password`, case-insensitively, is on the shipped common-password list.
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    COMMON_PASSWORDS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l == lower)
}

/// Whether `password` is one of the user's last `count` passwords (`password_history`).
pub async fn in_history<P: Platform>(
    p: &P,
    user_id: &str,
    count: u32,
    password: &str,
) -> Result<bool, SqlError> {
    if count == 0 {
        return Ok(false);
    }
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT password_hash FROM password_history WHERE user_id = ?1
                 ORDER BY created_at DESC, id DESC LIMIT ?2",
            )
            .bind(user_id)
            .bind(i64::from(count)),
        )
        .await?;
    for row in rows {
        if password::verify(&row.text("password_hash")?, password) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A tenant's policy (the defaults when it has none).
pub async fn load<P: Platform>(p: &P, tenant_id: &str) -> Result<PasswordPolicy, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT min_length, require_upper, require_lower, require_digit, require_symbol,
                        max_age_days, history_count, require_mfa
                 FROM password_policies WHERE tenant_id = ?1",
            )
            .bind(tenant_id),
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(PasswordPolicy::default());
    };
    let u = |c: &str| r.i64(c).map(|v| u32::try_from(v).unwrap_or(0));
    Ok(PasswordPolicy {
        min_length: u("min_length")?,
        require_upper: r.i64("require_upper")? == 1,
        require_lower: r.i64("require_lower")? == 1,
        require_digit: r.i64("require_digit")? == 1,
        require_symbol: r.i64("require_symbol")? == 1,
        max_age_days: r
            .opt_i64("max_age_days")?
            .map(|v| u32::try_from(v).unwrap_or(0)),
        history_count: u("history_count")?,
        require_mfa: r.i64("require_mfa")? == 1,
    })
}

/// Sets a tenant's policy (FR-AUTH-006), audited `password_policy.update` in the same batch.
pub async fn save<P: Platform>(
    p: &P,
    tenant_id: &str,
    policy: &PasswordPolicy,
    actor: &Actor,
    request_id: &str,
) -> Result<(), SetPolicyError> {
    policy.validate()?;
    let now = p.clock().now_ms();
    let record = AuditRecord::success(
        "password_policy.update",
        actor,
        Some(tenant_id),
        format!("password_policy:{tenant_id}"),
        Some(request_id),
    )
    .with("min_length", policy.min_length)
    .with("require_upper", policy.require_upper)
    .with("require_lower", policy.require_lower)
    .with("require_digit", policy.require_digit)
    .with("require_symbol", policy.require_symbol)
    .with("max_age_days", policy.max_age_days)
    .with("history_count", policy.history_count)
    .with("require_mfa", policy.require_mfa);
    p.sql()
        .batch(vec![
            Stmt::new(
                "INSERT INTO password_policies (tenant_id, min_length, require_upper, require_lower,
                   require_digit, require_symbol, max_age_days, history_count, updated_at,
                   require_mfa)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (tenant_id) DO UPDATE SET min_length = ?2, require_upper = ?3,
                   require_lower = ?4, require_digit = ?5, require_symbol = ?6, max_age_days = ?7,
                   history_count = ?8, updated_at = ?9, require_mfa = ?10, version = version + 1",
            )
            .bind(tenant_id)
            .bind(i64::from(policy.min_length))
            .bind(policy.require_upper)
            .bind(policy.require_lower)
            .bind(policy.require_digit)
            .bind(policy.require_symbol)
            .bind(policy.max_age_days.map(i64::from))
            .bind(i64::from(policy.history_count))
            .bind(now)
            .bind(policy.require_mfa),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FR-AUTH-006: each rule, table-driven: (policy change, password, rules it breaks).
    #[test]
    fn fr_auth_006_policy_rules() {
        let strict = PasswordPolicy {
            min_length: 10,
            require_upper: true,
            require_lower: true,
            require_digit: true,
            require_symbol: true,
            ..PasswordPolicy::default()
        };
        use PolicyRule::*;
        let cases: &[(&PasswordPolicy, &str, &[PolicyRule])] = &[
            (&PasswordPolicy::default(), "short-pw", &[MinLength]),
            (
                &PasswordPolicy::default(),
                "a perfectly long passphrase",
                &[],
            ),
            (&PasswordPolicy::default(), "Password1234", &[]),
            (&PasswordPolicy::default(), "baseball1234", &[]),
            (&strict, "Tr0ub4dor&3x", &[]),
            (&strict, "tr0ub4dor&3x", &[Upper]),
            (&strict, "TR0UB4DOR&3X", &[Lower]),
            (&strict, "Troubador&xx", &[Digit]),
            (&strict, "Tr0ub4dor33x", &[Symbol]),
            (&strict, "Tr0&", &[MinLength]),
            (&strict, "tr0ub", &[MinLength, Upper, Symbol]),
        ];
        for (policy, pw, want) in cases {
            assert_eq!(&policy.violations(pw), want, "{pw}");
        }
        let long = "x".repeat(MAX_PASSWORD_CHARS + 1);
        assert_eq!(PasswordPolicy::default().violations(&long), vec![MaxLength]);
    }

    /// The common-password list is shipped and matched case-insensitively.
    #[test]
    fn fr_auth_006_common_passwords_are_refused() {
        let lax = PasswordPolicy {
            min_length: 8,
            ..PasswordPolicy::default()
        };
        for pw in ["password", "PASSWORD", "12345678", "iloveyou", "baseball"] {
            assert!(lax.violations(pw).contains(&PolicyRule::Common), "{pw}");
        }
        assert!(lax.violations("k8#vQ2!mZp").is_empty());
        let entries = COMMON_PASSWORDS
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        assert_eq!(entries, 2000);
    }

    #[test]
    fn policy_ranges_are_validated() {
        let ok = PasswordPolicy::default();
        assert!(ok.validate().is_ok());
        for bad in [
            PasswordPolicy {
                min_length: 7,
                ..ok.clone()
            },
            PasswordPolicy {
                min_length: 129,
                ..ok.clone()
            },
            PasswordPolicy {
                history_count: 25,
                ..ok.clone()
            },
            PasswordPolicy {
                max_age_days: Some(0),
                ..ok.clone()
            },
        ] {
            assert_eq!(
                bad.validate().unwrap_err().code(),
                "invalid_policy",
                "{bad:?}"
            );
        }
    }
}
