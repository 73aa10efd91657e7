//! The kernel every domain stands on: newtypes and their parse refusal, the shared ids and
//! names, and small helpers. It depends on nothing above it (ports, ids and crypto beside it).

pub mod error;
pub mod future;
pub mod links;
pub mod names;
pub mod newtype;
pub mod schema;

pub(crate) use error::domain_errors;
pub use error::{DomainError, ErrorKind};
pub use future::{join2, join_all};
pub use links::Links;
pub use names::{AppId, Email, Plan, TenantDomain, TenantId, MAX_EMAIL_LEN};
pub use newtype::ParseError;
pub(crate) use newtype::{refuse, string_newtype};
