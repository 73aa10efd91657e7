//! Adaptive (risk-based) authentication (NFR-SEC-006, CON-SEC-008): every sign-in whose
//! credentials were right is scored from its signals — the device (known or not), the
//! location the runtime vouches for (country, edge location, network), impossible travel from
//! the previous sign-in, an unusual hour, recent failures on the account and from the address
//! — by the tenant's rules ([`rules`]), and the tenant's policy ([`policy`]) says what the
//! level requires: nothing more, a second factor, an emailed one-time code, or a refusal that
//! looks like a wrong password. Every decision is recorded in `sign_in_attempts` (the
//! baseline of later decisions and the owners' list of risky sign-ins) and audited with its
//! signals; no address, user agent or device identifier is kept in clear.
//!
//! The sign-in paths call [`decide`] once, after the credentials are checked, and
//! [`complete`] when a challenged sign-in passes its step-up. A service over users' sign-ins:
//! it depends on the audit log, the rate limiter's data and the mail queue, and nothing below
//! it depends on it.

pub mod geo;
pub mod policy;
mod refresh;
pub mod revoke;
pub mod rules;
mod store;

#[cfg(test)]
mod tests;

pub use policy::{RefreshAction, RiskAction, RiskPolicy, SetRiskPolicyError};
pub use refresh::{check_refresh, RefreshVerdict};
pub use revoke::{RevokeOutcome, SignInNotice, REVOKE_LINK_PATH, REVOKE_TOKEN_TTL_MS};
pub use rules::{Assessment, RiskLevel, RiskRules, Signal};
pub use store::{
    list_devices, prune, remove_device, risky_sign_ins, KnownDevice, RiskySignIn,
    ATTEMPT_RETENTION_MS,
};

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::ids;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};
use crate::sessions::SessionUser;
use crate::throttle;

/// Where a request came from, as the runtime vouches for it (never a header the client can
/// set): on Workers `request.cf`, on Spin a header of a trusted proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// ISO 3166-1 alpha-2 country, upper case.
    pub country: Option<String>,
    /// The edge location (Cloudflare colo, e.g. `FRA`).
    pub colo: Option<String>,
    /// The network's autonomous system number.
    pub asn: Option<i64>,
}

impl Location {
    /// A location from what the runtime reported; values that are not well formed are
    /// dropped (a country must be two ASCII letters, a colo up to eight letters or digits).
    pub fn parse(country: Option<&str>, colo: Option<&str>, asn: Option<i64>) -> Self {
        let country = country
            .map(str::trim)
            .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(str::to_ascii_uppercase)
            // Cloudflare's "unknown" country names nowhere.
            .filter(|c| c != "XX");
        let colo = colo
            .map(str::trim)
            .filter(|c| {
                !c.is_empty() && c.len() <= 8 && c.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .map(str::to_ascii_uppercase);
        Location {
            country,
            colo,
            asn: asn.filter(|a| (1..=4_294_967_295).contains(a)),
        }
    }
}

/// What a sign-in request tells about its origin, built by the HTTP layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInContext {
    /// The device identifier (the signed device cookie's id, or the API client's device
    /// header), if one was presented and well formed. Stored only hashed.
    pub device: Option<String>,
    /// A coarse label for the device from its user agent ("Firefox on Linux").
    pub device_label: Option<String>,
    /// The location the runtime vouches for.
    pub location: Location,
    /// The client address the runtime vouches for. Stored only hashed.
    pub client: Option<String>,
    /// Where the links of the sign-in's notice point (`PUBLIC_BASE_URL`, or in development the
    /// origin the request came to); `None`: the configured base, else a notice without a link.
    pub links_base: Option<String>,
}

impl SignInContext {
    /// The hash stored for the device identifier.
    pub fn device_hash(&self) -> Option<String> {
        self.device
            .as_deref()
            .map(|d| crypto::sha256_hex(format!("device|{d}").as_bytes()))
    }

    /// The hash stored for the client address.
    pub fn client_hash(&self) -> Option<String> {
        self.client
            .as_deref()
            .map(|c| crypto::sha256_hex(format!("client|{c}").as_bytes()))
    }
}

/// How the user proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// Password (then perhaps a second factor).
    Password,
    /// A passkey alone.
    Passkey,
    /// The tenant's identity provider.
    Sso,
    /// A refresh-token use (recorded only from a new country).
    Refresh,
}

impl SignInMethod {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignInMethod::Password => "password",
            SignInMethod::Passkey => "passkey",
            SignInMethod::Sso => "sso",
            SignInMethod::Refresh => "refresh",
        }
    }
}

/// What the user can give and will be asked anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Factors {
    /// The user has TOTP or a passkey (or, for SSO, the IdP vouches for its own MFA).
    pub has_second_factor: bool,
    /// The sign-in asks for a second factor anyway (the user has one, or the tenant requires
    /// MFA).
    pub asked_anyway: bool,
    /// The sign-in already holds a strong factor (a passkey sign-in, the IdP's own MFA): a
    /// step-up asks for nothing more.
    pub satisfied: bool,
}

/// What a sign-in needs before it completes, per the policy and the user's factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Nothing beyond what the sign-in would ask anyway.
    Nothing,
    /// The user's TOTP or passkey, even if the sign-in would not ask for it.
    SecondFactor,
    /// A one-time code mailed to the user.
    EmailCode,
    /// Refused, like a wrong password.
    Block,
}

/// One decision: recorded and audited by [`decide`], or, when it admits the sign-in, by the
/// caller's batch ([`Decision::writes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The `sign_in_attempts` row (for [`complete`]).
    pub attempt_id: String,
    /// The rules' verdict.
    pub assessment: Assessment,
    /// What the policy says for the level.
    pub action: RiskAction,
    /// What the sign-in needs now.
    pub requirement: Requirement,
    /// The statements recording a decision that admitted the sign-in at once (the attempt,
    /// its device, the audit record, the anomaly rule's address, the notice): the caller
    /// writes them first in the batch that starts the session or issues the code, so the
    /// check adds one read to the sign-in and no write of its own. Empty for any other
    /// decision, which [`decide`] has recorded already.
    pub writes: Vec<Stmt>,
}

impl Decision {
    /// Records the decision now, for a caller with no batch of its own to put it in.
    pub async fn commit<P: Platform>(&mut self, p: &P) -> Result<(), SqlError> {
        let writes = std::mem::take(&mut self.writes);
        if !writes.is_empty() {
            p.sql().batch(writes).await?;
        }
        Ok(())
    }
}

/// The requirement of `action` for a sign-in with `f`.
pub fn requirement(action: RiskAction, f: Factors) -> Requirement {
    match action {
        RiskAction::Allow => Requirement::Nothing,
        RiskAction::Block => Requirement::Block,
        _ if f.satisfied => Requirement::Nothing,
        RiskAction::SecondFactor | RiskAction::EmailCode if f.has_second_factor => {
            Requirement::SecondFactor
        }
        RiskAction::SecondFactor => Requirement::Block,
        RiskAction::EmailCode => Requirement::EmailCode,
    }
}

/// The outcome a decision is recorded with.
fn outcome(requirement: Requirement, challenged: bool) -> &'static str {
    match requirement {
        Requirement::Block => "blocked",
        _ if challenged => "challenged",
        _ => "success",
    }
}

/// Scores the sign-in of `user` with `ctx`, applies the tenant's policy, and records and
/// audits the decision in one batch: at once when the sign-in is held or refused, else
/// through the caller's batch ([`Decision::writes`]). `account` is the rate limiter's account
/// subject when the sign-in named one (tenant and email); `f` says what the user can give and
/// whether the caller holds the sign-in for a second factor whatever the decision: a sign-in
/// held for a factor or a step-up is recorded `challenged` until [`complete`], any other
/// completes with the caller's batch (its device becomes known, and a new device or country
/// is notified).
///
/// How long it took is kept for the request's log line ([`take_duration`]).
pub async fn decide<P: Platform>(
    p: &P,
    user: &SessionUser,
    ctx: &SignInContext,
    method: SignInMethod,
    account: Option<&str>,
    f: Factors,
    request_id: &str,
) -> Result<Decision, SqlError> {
    let started = p.clock().now_ms();
    let decision = decide_and_record(p, user, ctx, method, account, f, request_id).await;
    note_duration(request_id, p.clock().now_ms() - started);
    decision
}

/// The sign-ins' timings not yet logged, at most this many (a request that ran the check but
/// writes no request line, such as a console page's, leaves its entry behind).
const KEPT_DURATIONS: usize = 16;

thread_local! {
    /// (request id, ms) of the risk checks of requests under way in this isolate: a Worker
    /// interleaves requests, so each is found by its own id.
    static DURATIONS: RefCell<VecDeque<(String, i64)>> = const { RefCell::new(VecDeque::new()) };
}

/// Adds `ms` to the time request `request_id` spent in the risk check.
fn note_duration(request_id: &str, ms: i64) {
    DURATIONS.with(|d| {
        let mut d = d.borrow_mut();
        if let Some(entry) = d.iter_mut().find(|(id, _)| id == request_id) {
            entry.1 += ms;
            return;
        }
        if d.len() == KEPT_DURATIONS {
            d.pop_front();
        }
        d.push_back((request_id.to_owned(), ms));
    });
}

/// How long request `request_id` spent in the risk check (ms), once; `None` if it ran none.
/// For its request log line (the acceptance bound of NFR-SEC-006's check: under 5 ms p50).
pub fn take_duration(request_id: &str) -> Option<i64> {
    DURATIONS.with(|d| {
        let mut d = d.borrow_mut();
        let i = d.iter().position(|(id, _)| id == request_id)?;
        d.remove(i).map(|(_, ms)| ms)
    })
}

async fn decide_and_record<P: Platform>(
    p: &P,
    user: &SessionUser,
    ctx: &SignInContext,
    method: SignInMethod,
    account: Option<&str>,
    f: Factors,
    request_id: &str,
) -> Result<Decision, SqlError> {
    let now = p.clock().now_ms();
    let store::Observation {
        policy: pol,
        observed,
        email,
    } = store::observe(p, user, ctx, account, now).await?;
    let assessment = rules::assess(&pol.rules, &observed);
    let action = pol.action(assessment.level);
    let requirement = requirement(action, f);
    let challenged = f.asked_anyway
        || matches!(
            requirement,
            Requirement::SecondFactor | Requirement::EmailCode
        );
    let attempt_id = ids::new_ordered_id(p.clock(), p.random());
    let out = outcome(requirement, challenged);
    // The decision, and what a completed sign-in sets off, in one batch after the one read;
    // an admitted sign-in's batch is the caller's own (its session or code).
    let mut stmts = vec![store::attempt_insert(
        &attempt_id,
        user,
        ctx,
        method.as_str(),
        &assessment,
        action,
        out,
        now,
    )];
    if out == "success" {
        stmts.push(store::device_upsert(
            &ids::new_id(p.random()),
            &attempt_id,
            now,
        ));
    }
    let record = decision_record(user, ctx, &assessment, action, out, &attempt_id, request_id);
    stmts.push(audit::outbox_insert(&record, &audit::new_event_id(p), now));
    if out == "success" && method != SignInMethod::Refresh {
        // NFR-MON-001: every path's completed sign-in feeds the many-addresses anomaly rule
        // (a step-up's completion is noted where the second factor is checked).
        stmts.extend(crate::anomalies::signed_in_stmt(
            p.secrets(),
            &user.tenant_id,
            &user.user_id,
            ctx.client.as_deref(),
            now,
        ));
    }
    let new_place = assessment
        .signals
        .iter()
        .any(|s| matches!(s, Signal::NewDevice | Signal::NewCountry));
    if let (true, true, true, Some(email)) = (
        out == "success",
        new_place,
        pol.notify_new_sign_in,
        email.as_deref(),
    ) {
        let facts = store::NoticeFacts {
            attempt_id: &attempt_id,
            tenant_id: &user.tenant_id,
            user_id: &user.user_id,
            email,
            at_ms: now,
            country: ctx.location.country.as_deref(),
            device_label: ctx.device_label.as_deref(),
        };
        stmts.extend(store::notice_stmts(
            p,
            &facts,
            ctx.links_base.as_deref(),
            now,
        ));
    }
    let writes = if out == "success" {
        stmts
    } else {
        p.sql().batch(stmts).await?;
        Vec::new()
    };
    Ok(Decision {
        attempt_id,
        assessment,
        action,
        requirement,
        writes,
    })
}

/// The audit record of a decision: level, score, signals, action and outcome, the location,
/// and the hashes of the address and device (never either in clear).
pub(super) fn decision_record(
    user: &SessionUser,
    ctx: &SignInContext,
    a: &Assessment,
    action: RiskAction,
    outcome: &str,
    attempt_id: &str,
    request_id: &str,
) -> AuditRecord {
    let build = if outcome == "blocked" {
        AuditRecord::failure
    } else {
        AuditRecord::success
    };
    let signals: Vec<&str> = a.signals.iter().map(|s| s.as_str()).collect();
    build(
        "session.risk",
        &Actor::user(&user.user_id),
        Some(&user.tenant_id),
        format!("sign_in:{attempt_id}"),
        Some(request_id),
    )
    .with("level", a.level.as_str())
    .with("score", a.score)
    .with("signals", signals)
    .with("action", action.as_str())
    .with("outcome", outcome)
    .with("country", ctx.location.country.clone())
    .with("colo", ctx.location.colo.clone())
    .with("asn", ctx.location.asn)
    .with("client_hash", ctx.client_hash())
    .with("device_hash", ctx.device_hash())
}

/// A challenged sign-in passed its step-up: it is now a success (part of the user's baseline),
/// its device becomes known, and the user is told of a new device or country (the notice's
/// link under `links_base`, see [`SignInContext::links_base`]). Does nothing for an attempt
/// already completed.
pub async fn complete<P: Platform>(
    p: &P,
    attempt_id: &str,
    links_base: Option<&str>,
) -> Result<(), SqlError> {
    let now = p.clock().now_ms();
    let changed = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE sign_in_attempts SET outcome = 'success'
                 WHERE id = ?1 AND outcome = 'challenged'",
            )
            .bind(attempt_id),
        )
        .await?;
    if changed == 0 {
        return Ok(());
    }
    p.sql()
        .execute(store::device_upsert(
            &ids::new_id(p.random()),
            attempt_id,
            now,
        ))
        .await?;
    store::notify(p, attempt_id, links_base, now).await
}

/// The rate limiter's account subject of a sign-in by tenant domain and email (see
/// [`throttle::account_subject`]).
pub fn account_subject(tenant_domain: &str, email: &str) -> String {
    throttle::account_subject(tenant_domain, email)
}
