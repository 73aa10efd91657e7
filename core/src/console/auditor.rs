//! The auditor console (IF-AUDIT-CONSOLE): audit events by tenant and time range, their CSV,
//! the hash chain's verification, and billing usage. Operators see it too.

use super::{page, Answer, Web};
use crate::ports::Platform;

/// Dispatches `/console/audit/...` (`rest`: the path after `audit/`).
pub(super) async fn route<P: Platform>(web: &mut Web<'_, P>, rest: &[&str]) -> Answer {
    let _ = rest;
    page::not_found(web)
}
