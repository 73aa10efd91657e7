//! Refresh-token use from a new country (NFR-SEC-006): a refresh cannot be stepped up (nobody
//! is there to ask), so the tenant's policy either lets it rotate or revokes the session, and
//! the user signs in again through the full risk check. Either way the use is recorded and
//! audited. Only a use from a country none of the user's completed sign-ins came from costs a
//! write; any other refresh costs one read, and none without a location.

use super::rules::{Assessment, Signal};
use super::{
    decision_record, policy, store, RefreshAction, RiskAction, SignInContext, SignInMethod,
};
use crate::audit;
use crate::crypto;
use crate::ids;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};
use crate::sessions::SessionUser;

/// What a refresh may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// Rotate as usual.
    Allow,
    /// Revoke the session `sid` of `user` instead (the policy's `refresh_new_country`).
    Revoke {
        /// The session (refresh-token family).
        sid: String,
        /// Its user.
        user: SessionUser,
    },
}

/// Checks the use of `refresh_token` from `ctx`'s location against the user's completed
/// sign-ins, and records and audits a use from a new country under the tenant's policy. An
/// unknown or inactive token is [`RefreshVerdict::Allow`]: the refresh itself refuses it.
pub async fn check_refresh<P: Platform>(
    p: &P,
    refresh_token: &str,
    ctx: &SignInContext,
    request_id: &str,
) -> Result<RefreshVerdict, SqlError> {
    let Some(country) = ctx.location.country.as_deref() else {
        return Ok(RefreshVerdict::Allow);
    };
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT s.family_id, s.user_id, s.tenant_id, u.role,
                        EXISTS (SELECT 1 FROM sign_in_attempts a WHERE a.user_id = s.user_id
                                  AND a.outcome = 'success' AND a.country = ?2) AS seen,
                        EXISTS (SELECT 1 FROM sign_in_attempts a WHERE a.user_id = s.user_id
                                  AND a.outcome = 'success') AS has_history
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.refresh_token_hash = ?1 AND s.status = 'active'",
            )
            .bind(crypto::token_hash(refresh_token))
            .bind(country),
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(RefreshVerdict::Allow);
    };
    // Without a baseline nothing is new (as for a first sign-in).
    if row.i64("seen")? == 1 || row.i64("has_history")? == 0 {
        return Ok(RefreshVerdict::Allow);
    }
    let user = SessionUser {
        user_id: row.text("user_id")?,
        tenant_id: row.text("tenant_id")?,
        role: row.text("role")?,
    };
    let pol = policy::load(p, &user.tenant_id).await?;
    let score = pol.rules.new_country;
    let assessment = Assessment {
        signals: vec![Signal::NewCountry],
        score,
        level: pol.rules.level(score),
    };
    let (action, outcome) = match pol.refresh_new_country {
        RefreshAction::Allow => (RiskAction::Allow, "success"),
        RefreshAction::Revoke => (RiskAction::Block, "revoked"),
    };
    record(p, &user, ctx, &assessment, action, outcome, request_id).await?;
    Ok(match pol.refresh_new_country {
        RefreshAction::Allow => RefreshVerdict::Allow,
        RefreshAction::Revoke => RefreshVerdict::Revoke {
            sid: row.text("family_id")?,
            user,
        },
    })
}

/// Records and audits the refresh decision in one batch.
async fn record<P: Platform>(
    p: &P,
    user: &SessionUser,
    ctx: &SignInContext,
    a: &Assessment,
    action: RiskAction,
    outcome: &str,
    request_id: &str,
) -> Result<(), SqlError> {
    let now = p.clock().now_ms();
    let id = ids::new_ordered_id(p.clock(), p.random());
    let method = SignInMethod::Refresh.as_str();
    let record = decision_record(user, ctx, a, action, outcome, &id, request_id);
    p.sql()
        .batch(vec![
            store::attempt_insert(&id, user, ctx, method, a, action, outcome, now),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await?;
    Ok(())
}
