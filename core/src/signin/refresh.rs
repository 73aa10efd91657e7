//! Refresh-token rotation behind the risk check (FR-AUTH-005, NFR-SEC-006): a use from a new
//! country rotates or revokes the session as the tenant's policy says.

use crate::ports::Platform;
use crate::risk::{self, RefreshVerdict, SignInContext};
use crate::sessions::{self, RefreshError, TokenPair};

/// [`sessions::refresh`] from `ctx`'s location: a session the policy revokes for a use from a
/// new country answers [`RefreshError::Invalid`] (the user signs in again, through the risk
/// check).
pub async fn refresh_from<P: Platform>(
    p: &P,
    refresh_token: &str,
    ctx: &SignInContext,
    request_id: &str,
) -> Result<TokenPair, RefreshError> {
    match risk::check_refresh(p, refresh_token, ctx, request_id).await? {
        RefreshVerdict::Allow => sessions::refresh(p, refresh_token, request_id).await,
        RefreshVerdict::Revoke { sid, user } => {
            sessions::revoke_family(p, &sid, &user, "new_country", request_id).await?;
            Err(RefreshError::Invalid)
        }
    }
}
