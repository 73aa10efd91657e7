//! A tenant's adaptive-authentication policy (NFR-SEC-006, CON-SEC-008): what each risk level
//! requires, what a refresh from a new country does, and the rules that score a sign-in. Stored
//! as JSON in `risk_policies`; no row means [`RiskPolicy::default`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rules::{RiskLevel, RiskRules};
use crate::audit::{self, AuditRecord};
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};
use crate::users::admin::{TenantActor, TenantRole};

/// What a risk level requires of a sign-in whose credentials were right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskAction {
    /// Signs in as the user would anyway (their second factor if they have one).
    Allow,
    /// A TOTP code or a passkey; a user with neither cannot sign in at this level (refused
    /// like a wrong password).
    SecondFactor,
    /// A TOTP code or a passkey from a user who has one, else a one-time code mailed to the
    /// user's address.
    EmailCode,
    /// Refused, with the same answer and work as a wrong password.
    Block,
}

impl RiskAction {
    /// The stored and reported name.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskAction::Allow => "allow",
            RiskAction::SecondFactor => "second_factor",
            RiskAction::EmailCode => "email_code",
            RiskAction::Block => "block",
        }
    }
}

/// What a refresh-token use from a country the session never signed in from does (a refresh
/// cannot be stepped up: there is nobody to ask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefreshAction {
    /// Rotates the token as usual (the use is still recorded and audited).
    Allow,
    /// Revokes the session: the user signs in again, through the risk check.
    Revoke,
}

/// A tenant's adaptive-authentication policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskPolicy {
    /// What a low-risk sign-in requires (default `allow`).
    pub low: RiskAction,
    /// What a medium-risk sign-in requires (default `email_code`).
    pub medium: RiskAction,
    /// What a high-risk sign-in requires (default `email_code`).
    pub high: RiskAction,
    /// What a refresh from a new country does (default `revoke`).
    #[serde(default = "default_refresh")]
    pub refresh_new_country: RefreshAction,
    /// Mail the user a notice of a sign-in from a new device or country (default true).
    #[serde(default = "default_true")]
    pub notify_new_sign_in: bool,
    /// The signals' weights and the levels' thresholds.
    #[serde(default)]
    pub rules: RiskRules,
}

fn default_refresh() -> RefreshAction {
    RefreshAction::Revoke
}

fn default_true() -> bool {
    true
}

impl Default for RiskPolicy {
    fn default() -> Self {
        RiskPolicy {
            low: RiskAction::Allow,
            medium: RiskAction::EmailCode,
            high: RiskAction::EmailCode,
            refresh_new_country: default_refresh(),
            notify_new_sign_in: true,
            rules: RiskRules::default(),
        }
    }
}

impl RiskPolicy {
    /// What `level` requires.
    pub fn action(&self, level: RiskLevel) -> RiskAction {
        match level {
            RiskLevel::Low => self.low,
            RiskLevel::Medium => self.medium,
            RiskLevel::High => self.high,
        }
    }
}

/// Why a policy could not be set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SetRiskPolicyError {
    /// A field is out of range (`field`, `message`).
    #[error("{0}: {1}")]
    Invalid(&'static str, &'static str),
    /// Only the tenant's owner sets the policy.
    #[error("only the tenant's owner sets the adaptive authentication policy")]
    NotOwner,
    /// The database failed.
    #[error("risk policy storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl SetRiskPolicyError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            SetRiskPolicyError::Invalid(..) => "invalid_risk_policy",
            SetRiskPolicyError::NotOwner => "risk_policy_owner_only",
            SetRiskPolicyError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            SetRiskPolicyError::Invalid(field, _) => ErrorKind::InvalidField(field),
            SetRiskPolicyError::NotOwner => ErrorKind::Forbidden,
            SetRiskPolicyError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(SetRiskPolicyError);

/// A tenant's policy (the defaults when it has none, or when the stored JSON no longer
/// parses, which a later release could cause: the defaults are the safe reading).
pub async fn load<P: Platform>(p: &P, tenant_id: &str) -> Result<RiskPolicy, SqlError> {
    let rows = p
        .sql()
        .query(Stmt::new("SELECT policy FROM risk_policies WHERE tenant_id = ?1").bind(tenant_id))
        .await?;
    let Some(row) = rows.first() else {
        return Ok(RiskPolicy::default());
    };
    Ok(parse(Some(&row.text("policy")?)))
}

/// A stored policy's JSON read back: the defaults when there is none, or when it no longer
/// parses.
pub fn parse(stored: Option<&str>) -> RiskPolicy {
    stored
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

/// Sets the policy of `by`'s tenant (its owner only), audited `risk_policy.update` in the
/// same batch. Setting the same policy again changes nothing but `updated_at`.
pub async fn save<P: Platform>(
    p: &P,
    by: &TenantActor,
    policy: &RiskPolicy,
    request_id: &str,
) -> Result<(), SetRiskPolicyError> {
    if by.role != TenantRole::Owner {
        return Err(SetRiskPolicyError::NotOwner);
    }
    if let Some((field, msg)) = policy.rules.invalid_field() {
        return Err(SetRiskPolicyError::Invalid(field, msg));
    }
    let (tenant_id, actor) = (by.tenant_id.as_str(), &by.actor());
    let now = p.clock().now_ms();
    let json = serde_json::to_string(policy).unwrap_or_else(|_| "{}".into());
    let record = AuditRecord::success(
        "risk_policy.update",
        actor,
        Some(tenant_id),
        format!("risk_policy:{tenant_id}"),
        Some(request_id),
    )
    .with("low", policy.low.as_str())
    .with("medium", policy.medium.as_str())
    .with("high", policy.high.as_str());
    p.sql()
        .batch(vec![
            Stmt::new(
                "INSERT INTO risk_policies (tenant_id, policy, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant_id) DO UPDATE SET policy = ?2, updated_at = ?3",
            )
            .bind(tenant_id)
            .bind(json)
            .bind(now),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await?;
    Ok(())
}
