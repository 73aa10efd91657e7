//! The identifiers and names every domain shares: tenant and app ids, a tenant's domain, a plan
//! name, an email address.

use super::newtype::{refuse, string_newtype, ParseError};
use crate::ids;

string_newtype!(
    /// A tenant id: a UUID, stored lowercase and hyphenated.
    TenantId
);

impl TenantId {
    /// Parses a UUID in any case; stores it canonical (lowercase).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim().to_ascii_lowercase();
        if ids::is_uuid(&s) {
            Ok(TenantId(s))
        } else {
            refuse("tenant id", "must be a UUID")
        }
    }
}

string_newtype!(
    /// A managed app's id (FR-SYS-001): a UUID generated at registration, stored lowercase.
    AppId
);

impl AppId {
    /// Parses a UUID in any case; stores it canonical (lowercase).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim().to_ascii_lowercase();
        if ids::is_uuid(&s) {
            Ok(AppId(s))
        } else {
            refuse("app id", "must be a UUID")
        }
    }
}

string_newtype!(
    /// A tenant's unique handle (`acme`), used to pick the tenant at sign-in and in URLs.
    ///
    /// Rules (a DNS label, so it can later become a subdomain): 3 to 63 characters of `a-z`,
    /// `0-9` and `-`, starting and ending with a letter or digit. Input is trimmed and ASCII
    /// upper case is folded to lower case (`Acme` is `acme`); it is unique case-insensitively.
    TenantDomain
);

impl TenantDomain {
    /// Trims, folds to lowercase and checks the rules above.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim().to_ascii_lowercase();
        if s.len() < 3 || s.len() > 63 {
            return refuse("domain", "must be 3 to 63 characters");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return refuse("domain", "may contain only a-z, 0-9 and -");
        }
        if s.starts_with('-') || s.ends_with('-') {
            return refuse("domain", "must start and end with a letter or digit");
        }
        Ok(TenantDomain(s))
    }
}

string_newtype!(
    /// A subscription plan name, syntactically valid (1 to 64 of `a-z`, `0-9`, `_`, `-`). That
    /// it exists in `plans` is checked by the service (`UnknownPlan`), which reads the table.
    Plan
);

impl Plan {
    /// Trims, folds to lowercase and checks the characters.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim().to_ascii_lowercase();
        if s.is_empty() || s.len() > 64 {
            return refuse("plan", "must be 1 to 64 characters");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return refuse("plan", "may contain only a-z, 0-9, _ and -");
        }
        Ok(Plan(s))
    }
}

/// Longest email address (RFC 5321 path limit less the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;

string_newtype!(
    /// An email address, pragmatically validated: `local@domain`, at most 254 bytes, a local part
    /// of 1 to 64 printable ASCII characters without spaces, quotes or angle brackets, and a
    /// domain of dot-separated labels (`a-z`, `0-9`, `-`, at least two labels, lowercased). The
    /// local part keeps its case; addresses compare case-insensitively in storage.
    Email
);

impl Email {
    /// Trims, lowercases the domain and checks the rules above.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        const WHAT: &str = "email";
        let s = raw.trim();
        if s.is_empty() || s.len() > MAX_EMAIL_LEN {
            return refuse(WHAT, "must be 1 to 254 characters");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return refuse(WHAT, "must be an address like name@example.com");
        };
        if local.is_empty() || local.len() > 64 {
            return refuse(WHAT, "the part before @ must be 1 to 64 characters");
        }
        let local_ok = local.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'@' | b'"'
                        | b'<'
                        | b'>'
                        | b'('
                        | b')'
                        | b','
                        | b';'
                        | b':'
                        | b'\\'
                        | b'['
                        | b']'
                )
        });
        if !local_ok || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return refuse(WHAT, "the part before @ has invalid characters");
        }
        let domain = domain.to_ascii_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        if !domain_ok {
            return refuse(WHAT, "the part after @ must be a domain like example.com");
        }
        Ok(Email(format!("{local}@{domain}")))
    }
}
