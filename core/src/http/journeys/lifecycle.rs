//! The hourly part of the journey (NFR-MON-003): a throwaway canary tenant is provisioned
//! through `POST /v1/tenants` and deleted through `DELETE /v1/tenants/{id}`, both as the
//! journeys' own operator, then purged at once (its grace period cut short: it is the
//! journeys' own, marked `canary` right after it is created).
//!
//! Its owner's invitation goes to an `.invalid` address (RFC 2606), which no mail reaches.

use ::http::Method;
use serde_json::{json, Value as Json};

use super::steps::{body, unexpected, Call, StepError};
use crate::auth::{OperatorPrincipal, PlatformRole};
use crate::crypto;
use crate::journeys::canary::SYSTEM_ACTOR;
use crate::ports::{Platform, Random, Sql, Stmt};

/// The operator the hourly journey acts as (its audit records name it).
fn operator() -> OperatorPrincipal {
    OperatorPrincipal {
        user_id: SYSTEM_ACTOR.to_owned(),
        issuer: "edgeplane".to_owned(),
        subject: "journeys".to_owned(),
        role: PlatformRole::Operator,
    }
}

/// Provisions a throwaway tenant and marks it canary; returns its id.
pub(super) async fn provision<P: Platform>(p: &P, rid: &str) -> Result<String, StepError> {
    let mut suffix = [0u8; 6];
    p.random().fill(&mut suffix);
    let domain = format!("edgeplane-canary-{}", crypto::hex(&suffix));
    let req = json!({
        "name": "Edgeplane canary (throwaway)",
        "domain": domain,
        "plan": "free",
        "owner_email": "owner@edgeplane-canary.invalid",
    });
    let mut call = Call::new(Method::POST, "/v1/tenants", rid).json(&req);
    call.operator = Some(operator());
    let resp = call.send(p).await?;
    let id = body(&resp)
        .pointer("/tenant/id")
        .and_then(Json::as_str)
        .map(str::to_owned);
    let Some(id) = id.filter(|_| resp.status().as_u16() == 201) else {
        return Err(unexpected("POST /v1/tenants", &resp));
    };
    p.sql()
        .execute(Stmt::new("UPDATE tenants SET canary = 1 WHERE id = ?1").bind(id.as_str()))
        .await
        .map_err(|_| "marking the throwaway tenant canary failed".to_owned())?;
    Ok(id)
}

/// Deletes the throwaway tenant through the API, then purges it now.
pub(super) async fn purge<P: Platform>(
    p: &P,
    id: &str,
    now: i64,
    rid: &str,
) -> Result<(), StepError> {
    let mut call = Call::new(Method::DELETE, format!("/v1/tenants/{id}"), rid);
    call.operator = Some(operator());
    let resp = call.send(p).await?;
    if resp.status().as_u16() != 202 {
        return Err(unexpected("DELETE /v1/tenants/{id}", &resp));
    }
    let storage = |_| "the purge of the throwaway tenant failed".to_owned();
    p.sql()
        .execute(
            Stmt::new(
                "UPDATE tenants SET purge_after = ?2
                 WHERE id = ?1 AND canary = 1 AND status = 'pending_deletion'",
            )
            .bind(id)
            .bind(now),
        )
        .await
        .map_err(storage)?;
    let tenant = crate::tenants::TenantId::parse(id)
        .map_err(|_| "the throwaway tenant id does not parse".to_owned())?;
    crate::tenants::purge_one_due(p, &tenant, now)
        .await
        .map_err(|_| "the purge of the throwaway tenant failed".to_owned())?;
    let rows = p
        .sql()
        .query(Stmt::new("SELECT status FROM tenants WHERE id = ?1").bind(id))
        .await
        .map_err(storage)?;
    match rows.first().map(|r| r.text("status")) {
        Some(Ok(s)) if s == "deleted" => Ok(()),
        _ => Err("the throwaway tenant was not purged".to_owned()),
    }
}
