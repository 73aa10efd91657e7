//! The tenant model and the newtypes parsed at the edge: once parsed, a value is valid everywhere.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub(crate) use crate::kernel::{refuse, string_newtype};
pub use crate::kernel::{Email, ParseError, Plan, TenantDomain, TenantId, MAX_EMAIL_LEN};
use crate::ports::{Row, SqlError};

/// Longest tenant name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

string_newtype!(
    /// A tenant's display name: trimmed, 1 to 200 characters, no control characters.
    TenantName
);

impl TenantName {
    /// Trims and checks length and characters.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim();
        if s.is_empty() {
            return refuse("tenant name", "must not be empty");
        }
        if s.chars().count() > MAX_NAME_CHARS {
            return refuse("tenant name", "must be at most 200 characters");
        }
        if s.chars().any(char::is_control) {
            return refuse("tenant name", "must not contain control characters");
        }
        Ok(TenantName(s.to_owned()))
    }
}

/// Longest suspension reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

string_newtype!(
    /// Why an operator suspended a tenant: trimmed, 1 to 500 characters, no control characters
    /// other than line breaks. Free text written by an operator: recorded in the tenant and the
    /// audit trail, so operators should not put personal data in it.
    SuspensionReason
);

impl SuspensionReason {
    /// Trims and checks length and characters.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim();
        if s.is_empty() || s.chars().count() > MAX_REASON_CHARS {
            return refuse("reason", "must be 1 to 500 characters");
        }
        if s.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
            return refuse("reason", "must not contain control characters");
        }
        Ok(SuspensionReason(s.to_owned()))
    }
}

string_newtype!(
    /// A client's `Idempotency-Key`: 1 to 255 visible ASCII characters.
    IdempotencyKey
);

impl IdempotencyKey {
    /// Checks length and characters (no trimming: the key is the client's exact text).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.is_empty() || raw.len() > 255 {
            return refuse("idempotency key", "must be 1 to 255 characters");
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return refuse("idempotency key", "must be visible ASCII characters");
        }
        Ok(IdempotencyKey(raw.to_owned()))
    }
}

/// A tenant's lifecycle state (FR-OPS-001, FR-OPS-002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// Users can sign in and apps can serve it.
    Active,
    /// Access refused at the edge until an operator activates it again.
    Suspended,
    /// Deleted by an operator, restorable until `purge_after`; access refused.
    PendingDeletion,
    /// Purged: a tombstone that answers Gone.
    Deleted,
}

impl TenantStatus {
    /// The stored (and API) name.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::PendingDeletion => "pending_deletion",
            TenantStatus::Deleted => "deleted",
        }
    }

    /// Parses [`TenantStatus::as_str`] back (exact, lowercase).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw {
            "active" => Ok(TenantStatus::Active),
            "suspended" => Ok(TenantStatus::Suspended),
            "pending_deletion" => Ok(TenantStatus::PendingDeletion),
            "deleted" => Ok(TenantStatus::Deleted),
            _ => refuse(
                "status",
                "must be one of active, suspended, pending_deletion, deleted",
            ),
        }
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant as stored. A purged tenant (status `deleted`) is a tombstone: no domain, a scrubbed
/// name, and every child row gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    /// Its id.
    #[schema(value_type = String, format = "uuid")]
    pub id: TenantId,
    /// Display name.
    #[schema(value_type = String)]
    pub name: TenantName,
    /// Unique handle; null once purged.
    #[schema(value_type = Option<String>)]
    pub domain: Option<TenantDomain>,
    /// Subscription plan.
    #[schema(value_type = String)]
    pub plan: Plan,
    /// Lifecycle state.
    #[schema(inline)]
    pub status: TenantStatus,
    /// Why it was suspended (kept while pending deletion, so a restore keeps the suspension).
    pub suspended_reason: Option<String>,
    /// When it was suspended (unix ms); set while suspended, or pending deletion after one.
    pub suspended_at: Option<i64>,
    /// When deletion was requested (unix ms).
    pub deletion_requested_at: Option<i64>,
    /// When the purge may run (unix ms), set while pending deletion.
    pub purge_after: Option<i64>,
    /// When it was purged (unix ms).
    pub deleted_at: Option<i64>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
    /// Optimistic-concurrency version, bumped by every change.
    pub version: i64,
}

/// The columns [`Tenant::from_row`] reads, as a literal for `concat!` into SELECT lists.
macro_rules! tenant_columns {
    () => {
        "id, name, domain, plan, status, suspended_reason, suspended_at, deletion_requested_at, \
         purge_after, deleted_at, created_at, updated_at, version"
    };
}
pub(crate) use tenant_columns;

impl Tenant {
    /// A tenant from a row selecting [`tenant_columns!`].
    pub(crate) fn from_row(row: &Row) -> Result<Self, SqlError> {
        let bad = |e: ParseError| SqlError::Decode(format!("tenants row: {}: {e}", e.what));
        Ok(Tenant {
            id: TenantId::parse(&row.text("id")?).map_err(bad)?,
            name: TenantName::parse(&row.text("name")?).map_err(bad)?,
            domain: row
                .opt_text("domain")?
                .map(|d| TenantDomain::parse(&d))
                .transpose()
                .map_err(bad)?,
            plan: Plan::parse(&row.text("plan")?).map_err(bad)?,
            status: TenantStatus::parse(&row.text("status")?).map_err(bad)?,
            suspended_reason: row.opt_text("suspended_reason")?,
            suspended_at: row.opt_i64("suspended_at")?,
            deletion_requested_at: row.opt_i64("deletion_requested_at")?,
            purge_after: row.opt_i64("purge_after")?,
            deleted_at: row.opt_i64("deleted_at")?,
            created_at: row.i64("created_at")?,
            updated_at: row.i64("updated_at")?,
            version: row.i64("version")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_id_is_a_uuid_stored_lowercase() {
        let id = TenantId::parse(" 0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B ").unwrap();
        assert_eq!(id.as_str(), "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        for bad in [
            "",
            "acme",
            "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b",
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5",
        ] {
            assert_eq!(TenantId::parse(bad).unwrap_err().what, "tenant id", "{bad}");
        }
    }

    #[test]
    fn tenant_name_is_trimmed_bounded_and_printable() {
        assert_eq!(
            TenantName::parse("  Acme Corp ").unwrap().as_str(),
            "Acme Corp"
        );
        assert_eq!(
            TenantName::parse("Ünïcödé ✓").unwrap().as_str(),
            "Ünïcödé ✓"
        );
        assert!(TenantName::parse(&"é".repeat(200)).is_ok());
        let cases = [
            ("", "must not be empty"),
            ("   ", "must not be empty"),
            ("Acme\u{0}", "must not contain control characters"),
            ("Ac\nme", "must not contain control characters"),
        ];
        for (raw, reason) in cases {
            assert_eq!(
                TenantName::parse(raw).unwrap_err().reason,
                reason,
                "{raw:?}"
            );
        }
        assert!(TenantName::parse(&"a".repeat(201)).is_err());
    }

    #[test]
    fn tenant_domain_is_a_lowercase_dns_label() {
        for (raw, want) in [
            ("acme", "acme"),
            (" Acme-2 ", "acme-2"),
            ("a1b", "a1b"),
            ("x--y", "x--y"),
        ] {
            assert_eq!(TenantDomain::parse(raw).unwrap().as_str(), want);
        }
        assert!(TenantDomain::parse(&"a".repeat(63)).is_ok());
        for bad in [
            "ab", "-acme", "acme-", "ac me", "acme.io", "acmé", "ac_me", "",
        ] {
            assert!(TenantDomain::parse(bad).is_err(), "{bad}");
        }
        assert!(TenantDomain::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn plan_is_a_lowercase_name() {
        assert_eq!(Plan::parse(" Pro ").unwrap().as_str(), "pro");
        assert!(Plan::parse("enterprise_2024-v1").is_ok());
        for bad in ["", "p r o", "pro!", "plän"] {
            assert!(Plan::parse(bad).is_err(), "{bad}");
        }
        assert!(Plan::parse(&"p".repeat(65)).is_err());
    }

    #[test]
    fn email_is_pragmatically_valid_with_a_lowercase_domain() {
        for (raw, want) in [
            ("ann@acme.test", "ann@acme.test"),
            (" Ann.Lee+x@ACME.Example.COM ", "Ann.Lee+x@acme.example.com"),
            ("o'neil@sub-1.acme.io", "o'neil@sub-1.acme.io"),
        ] {
            assert_eq!(Email::parse(raw).unwrap().as_str(), want);
        }
        for bad in [
            "",
            "ann",
            "ann@",
            "@acme.test",
            "ann@acme",
            "ann@@acme.test",
            "an n@acme.test",
            "ann@acme..test",
            "ann@-acme.test",
            "ann@acme_x.test",
            ".ann@acme.test",
            "a..nn@acme.test",
            "<ann>@acme.test",
            "ann@acme.test\n",
        ] {
            // A trailing newline is trimmed, so that one is valid: check it separately.
            if bad.ends_with('\n') {
                assert!(Email::parse(bad).is_ok());
                continue;
            }
            assert_eq!(Email::parse(bad).unwrap_err().what, "email", "{bad:?}");
        }
        let long_local = format!("{}@acme.test", "a".repeat(65));
        assert!(Email::parse(&long_local).is_err());
        let long = format!(
            "{}@{}{}.test",
            "a".repeat(60),
            "b".repeat(63),
            ".c".repeat(90)
        );
        assert!(long.len() > 254 && Email::parse(&long).is_err());
    }

    #[test]
    fn status_and_keys_parse_exactly() {
        for s in [
            TenantStatus::Active,
            TenantStatus::Suspended,
            TenantStatus::PendingDeletion,
            TenantStatus::Deleted,
        ] {
            assert_eq!(TenantStatus::parse(s.as_str()), Ok(s));
        }
        assert!(TenantStatus::parse("Active").is_err());
        assert!(TenantStatus::parse("purged").is_err());
        assert!(IdempotencyKey::parse("k-1:abc/DEF").is_ok());
        for bad in ["", "a b", "é", "a\tb"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(SuspensionReason::parse(" unpaid\ninvoice ").is_ok());
        assert!(SuspensionReason::parse(" ").is_err());
        assert!(SuspensionReason::parse("a\u{7}").is_err());
    }

    #[test]
    fn newtypes_round_trip_through_serde_and_revalidate() {
        let d: TenantDomain = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"acme\"");
        assert!(serde_json::from_str::<TenantDomain>("\"-bad\"").is_err());
        assert_eq!(
            serde_json::to_string(&TenantStatus::PendingDeletion).unwrap(),
            "\"pending_deletion\""
        );
    }
}
