//! The SSO sign-in behind the risk check (FR-AUTH-003, NFR-SEC-006): the tenant's IdP vouches
//! for who the user is, and the same adaptive decision as for a password says what more the
//! sign-in needs. The IdP's own MFA (`amr`/`acr`) satisfies a step-up; without it, a level that
//! requires one continues into the local step-up of a password sign-in: a pending sign-in
//! completed with the user's TOTP or passkey, or a code mailed to the account's address, at
//! `/v1/auth/mfa/verify` or on the login page. A level the policy blocks is refused.

use crate::ports::{Platform, Sql, SqlError, Stmt};
use crate::risk::{self, Requirement, SignInContext};
use crate::sso::flow::{self, CallbackParams};
use crate::sso::{SsoCallbackError, SsoSignIn};

use super::mfa::{self, FirstFactor};

/// What the step-up of an SSO sign-in asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUpFactor {
    /// The user's TOTP (or recovery code) or passkey.
    SecondFactor,
    /// The one-time code mailed to the account's address.
    EmailCode,
}

/// An SSO sign-in the risk check holds for a step-up: nothing starts until its pending sign-in
/// (`mfa_token`) is completed.
#[derive(Debug, Clone, PartialEq)]
pub struct SsoStepUp {
    /// The IdP's sign-in: its user, and where it goes on after the step-up.
    pub sign_in: SsoSignIn,
    /// The single-use token of the pending sign-in (only its hash is stored).
    pub mfa_token: String,
    /// What it asks for.
    pub factor: StepUpFactor,
}

/// What an SSO callback leads to.
#[derive(Debug, Clone, PartialEq)]
pub enum SsoOutcome {
    /// Signed in: the caller starts the session or completes the login flow (`amr` `sso`).
    SignedIn(SsoSignIn),
    /// A step-up first.
    StepUp(SsoStepUp),
}

/// Completes the SSO callback `params` from the device and location of `origin`, through the
/// risk check (see the module documentation). A browser that names no device gets
/// `fresh_device(login_flow)`, given the login page's flow the sign-in started from, if any.
/// The decision is recorded; a stepped-up sign-in stays `challenged` (its device unknown)
/// until its pending sign-in completes.
pub async fn sso_sign_in<P: Platform>(
    p: &P,
    params: &CallbackParams,
    origin: &SignInContext,
    fresh_device: impl FnOnce(Option<&str>) -> String,
    request_id: &str,
) -> Result<SsoOutcome, SsoCallbackError> {
    let signed_in = flow::callback(p, params, origin.client.as_deref(), request_id).await?;
    let mut origin = origin.clone();
    if origin.device.is_none() {
        origin.device = Some(fresh_device(signed_in.login_flow.as_deref()));
    }
    let local = local_account(p, &signed_in.user.user_id).await?;
    let factors = risk::Factors {
        has_second_factor: signed_in.idp_mfa || local.has_second_factor,
        asked_anyway: false,
        satisfied: signed_in.idp_mfa,
    };
    let decision = risk::decide(
        p,
        &signed_in.user,
        &origin,
        risk::SignInMethod::Sso,
        None,
        factors,
        request_id,
    )
    .await?;
    let user = &signed_in.user;
    let links_base = origin.links_base.as_deref();
    let (mfa_token, factor) = match decision.requirement {
        Requirement::Nothing => {
            let mut signed_in = signed_in;
            signed_in.attempt_id = Some(decision.attempt_id);
            signed_in.decided = decision.writes;
            return Ok(SsoOutcome::SignedIn(signed_in));
        }
        Requirement::Block => return Err(SsoCallbackError::AccountRefused("risk_blocked")),
        Requirement::SecondFactor => {
            let token = mfa::challenge(
                p,
                user,
                false,
                &decision.attempt_id,
                FirstFactor::Sso,
                links_base,
            )
            .await?;
            (token, StepUpFactor::SecondFactor)
        }
        Requirement::EmailCode => {
            let token = mfa::email_challenge(
                p,
                user,
                &local.email,
                &decision.attempt_id,
                FirstFactor::Sso,
                links_base,
            )
            .await?;
            (token, StepUpFactor::EmailCode)
        }
    };
    Ok(SsoOutcome::StepUp(SsoStepUp {
        sign_in: signed_in,
        mfa_token,
        factor,
    }))
}

/// What the step-up needs of the account: its address, and whether it has TOTP or a passkey.
struct LocalAccount {
    email: String,
    has_second_factor: bool,
}

async fn local_account<P: Platform>(p: &P, user_id: &str) -> Result<LocalAccount, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT u.email, u.mfa_enabled,
                        EXISTS (SELECT 1 FROM webauthn_credentials w WHERE w.user_id = u.id)
                          AS has_passkey
                 FROM users u WHERE u.id = ?1",
            )
            .bind(user_id),
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| SqlError::Other("the signed-in account is gone".into()))?;
    Ok(LocalAccount {
        email: row.text("email")?,
        has_second_factor: row.i64("mfa_enabled")? == 1 || row.i64("has_passkey")? == 1,
    })
}
