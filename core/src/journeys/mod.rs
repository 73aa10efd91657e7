//! Synthetic journeys (NFR-MON-003): at every scheduled run (5 minutes on Workers' cron,
//! `POST /internal/scheduled` elsewhere) a canary tenant's user signs in with a password and a
//! TOTP code, the access token is introspected, a flag is evaluated over OFREP, and a billing
//! event is ingested and read back; once an hour a throwaway canary tenant is also provisioned
//! and purged. Each step is timed and recorded ([`store`]); a failed run fires the `journey`
//! alert (`crate::alerts::rules`).
//!
//! This module owns the canary ([`canary`]), the record ([`store`]) and the [`Journey`] the
//! scheduled run calls. The steps themselves are requests through the whole request handling
//! in process, so they live in the HTTP layer, which implements [`Journey`]: a broken route,
//! caller check or store fails the journey as it would fail a customer. What keeps them apart
//! from customers' traffic:
//! - they are not counted in the request metrics, so the key services' error rates and p99
//!   show what customers get; the journeys' own timings are in their record;
//! - they carry no client address, so the per-address sign-in limits of real users never see
//!   them, and the per-account limits and lockout are the canary user's own;
//! - the canary tenants are marked `canary` and left out of the operators' tenant listing and
//!   of cross-tenant usage summaries and exports ([`canary`]).
//!
//! A TOTP code is accepted once per 30-second step (replay protection). The journey clears the
//! canary user's last used step before signing in, so runs closer together than that
//! (development, the contract suite) do not fail on a code the previous run used.

#![allow(async_fn_in_trait)]

pub mod canary;
pub mod store;

pub use store::{JourneyRun, StepResult};

use crate::ports::{Platform, SqlError};

/// What one run did, with the cause of a failed step for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The run as recorded.
    pub run: JourneyRun,
    /// Why the failed step failed, in general terms (no secret), for the log.
    pub cause: Option<String>,
}

/// A synthetic journey the scheduled run performs (`crate::http` implements the real one).
pub trait Journey<P: Platform> {
    /// Runs one journey at `now` and records it; `None` when none ran (the deployment cannot
    /// hold a canary, [`canary::configured`]). Fails only when the record cannot be written.
    async fn run(&self, p: &P, now: i64) -> Result<Option<Outcome>, SqlError>;
}

/// No journey: what a scheduled run without the HTTP layer (unit tests of other jobs) runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJourney;

impl<P: Platform> Journey<P> for NoJourney {
    async fn run(&self, _p: &P, _now: i64) -> Result<Option<Outcome>, SqlError> {
        Ok(None)
    }
}
