//! The tenant console (IF-TENANT-CONSOLE): a tenant's owner or admin manages its users,
//! invitations, security settings and subscription, and reads its flags.

use super::{page, Answer, Web};
use crate::ports::Platform;

/// Dispatches a tenant session's page (`rest`: the path after `/console/`).
pub(super) async fn route<P: Platform>(web: &mut Web<'_, P>, rest: &[&str]) -> Answer {
    let _ = rest;
    page::not_found(web)
}
