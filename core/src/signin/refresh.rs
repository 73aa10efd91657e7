//! Refresh-token rotation behind the risk check (FR-AUTH-005, NFR-SEC-006): a use from a new
//! country rotates or revokes the session as the tenant's policy says, for the Edgeplane API's
//! refresh (`/v1/auth/refresh`) and the OpenID provider's refresh grant alike.

use crate::ports::Platform;
use crate::risk::{self, RefreshVerdict, SignInContext};
use crate::sessions::{self, Grant, RefreshError, TokenPair};

/// [`sessions::refresh`] from `ctx`'s location: a session the policy revokes for a use from a
/// new country answers [`RefreshError::Invalid`] (the user signs in again, through the risk
/// check).
pub async fn refresh_from<P: Platform>(
    p: &P,
    refresh_token: &str,
    ctx: &SignInContext,
    request_id: &str,
) -> Result<TokenPair, RefreshError> {
    match risk_check(p, refresh_token, ctx, request_id).await? {
        Checked::Allowed => sessions::refresh(p, refresh_token, request_id).await,
        Checked::Revoked => Err(RefreshError::Invalid),
    }
}

/// [`refresh_from`] of a session issued for `grant` (an OpenID provider client's refresh
/// grant), the same check first.
pub(crate) async fn refresh_grant_from<P: Platform>(
    p: &P,
    refresh_token: &str,
    grant: &Grant<'_>,
    ctx: &SignInContext,
    request_id: &str,
) -> Result<TokenPair, RefreshError> {
    match risk_check(p, refresh_token, ctx, request_id).await? {
        Checked::Allowed => sessions::refresh_with(p, refresh_token, grant, request_id).await,
        Checked::Revoked => Err(RefreshError::Invalid),
    }
}

/// What the risk check left of a refresh.
enum Checked {
    /// Rotate as usual.
    Allowed,
    /// The policy revoked the session.
    Revoked,
}

/// The risk check of a refresh: a session the policy revokes is revoked here.
async fn risk_check<P: Platform>(
    p: &P,
    refresh_token: &str,
    ctx: &SignInContext,
    request_id: &str,
) -> Result<Checked, RefreshError> {
    match risk::check_refresh(p, refresh_token, ctx, request_id).await? {
        RefreshVerdict::Allow => Ok(Checked::Allowed),
        RefreshVerdict::Revoke { sid, user } => {
            sessions::revoke_family(p, &sid, &user, "new_country", request_id).await?;
            Ok(Checked::Revoked)
        }
    }
}
