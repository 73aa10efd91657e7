//! What kind of failure a domain error is. Every error a domain returns to a caller names its
//! kind per variant, in an exhaustive match next to its stable code: a new variant without a kind
//! does not compile. The HTTP layer turns each kind into one problem type in one place
//! (`http/problem.rs`); no domain knows a status code, a header or a route.

use std::fmt;

/// The kind of a domain error, as whoever reports it needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed as a whole.
    Invalid,
    /// One field of the request is invalid; the field is named.
    InvalidField(&'static str),
    /// No credential, or one that does not sign anyone in (a wrong password). Answers the same
    /// whatever the reason, so it never tells which part was wrong.
    Unauthenticated,
    /// A bearer token that was presented but is malformed, unknown, revoked or expired.
    InvalidToken,
    /// The session the caller holds has ended (revoked, signed out, or expired).
    SessionEnded,
    /// The first factor was right; a second factor is required to finish signing in.
    SecondFactorRequired,
    /// Authenticated, but not allowed to do this (now).
    Forbidden,
    /// No such resource, or one of another tenant.
    NotFound,
    /// The resource existed and was deleted.
    Gone,
    /// The request conflicts with the current state (a duplicate, a concurrent change).
    Conflict,
    /// A business rule refuses the request as it is.
    Refused,
    /// A business rule refuses the value of one field (a reference to something that does not
    /// exist or may not be used, a time already past); the field is named. The value is well
    /// formed: no schema could have refused it.
    RefusedField(&'static str),
    /// Too many attempts: retry after this many seconds.
    RateLimited {
        /// Seconds until an attempt may succeed.
        retry_after_secs: i64,
    },
    /// A dependency (storage, an identity provider, a secret not set) is unavailable; the
    /// cause is for the operator's log, never for the caller.
    Unavailable,
    /// A failure that should not happen (a bug, corrupt data); the cause is for the log only.
    Internal,
}

impl ErrorKind {
    /// Whether the failure is the server's (its cause is logged and never shown).
    pub fn is_server_side(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Internal)
    }
}

/// A domain error as a caller reports it: a stable machine-readable code (for example
/// `domain_taken`), the kind, and a message (its `Display`).
pub trait DomainError: fmt::Display {
    /// The error's stable code.
    fn code(&self) -> &'static str;
    /// What kind of failure it is.
    fn kind(&self) -> ErrorKind;
}

/// Implements [`DomainError`] for error enums that have inherent `code()` and `kind()` methods
/// (each an exhaustive match over the variants).
macro_rules! domain_errors {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::kernel::DomainError for $t {
            fn code(&self) -> &'static str {
                <$t>::code(self)
            }
            fn kind(&self) -> $crate::kernel::ErrorKind {
                <$t>::kind(self)
            }
        }
    )*};
}
pub(crate) use domain_errors;
