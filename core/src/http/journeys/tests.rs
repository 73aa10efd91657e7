//! NFR-MON-003 on real SQLite with the migrations and the fixed clock: the journey through the
//! whole request handling, its failure at the step whose store fails (the faults module in
//! front of the ports), the journey alert firing and resolving, the canary kept out of the
//! operators' views, the idempotent set-up and the hourly provision-and-purge.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_executor::block_on;

use super::run;
use crate::alerts::{self, AlertState};
use crate::faults::{self, Faultable, Port};
use crate::journeys::{canary, store};
use crate::metrics;
use crate::ports::{Backends, Platform, Sql, Stmt, StreamKind};
use crate::testing::{
    CountingVerifier, FixedClock, MapHttp, MapSecrets, MemBlobs, MemKv, NativeSql, SeededRandom,
    TestPlatform, VecLogger, START_MS,
};
use crate::tokens::master_key::MASTER_KEY_SECRET;

const MIN: i64 = 60_000;

/// [`TestPlatform`] with the fault-injection ports the runtimes put in front of their stores.
struct FaultPlatform {
    inner: TestPlatform,
    sql: Faultable<NativeSql>,
    kv: Faultable<MemKv>,
    events: Faultable<crate::events::SqlEventLog<NativeSql, FixedClock>>,
    blobs: Faultable<MemBlobs>,
}

impl Platform for FaultPlatform {
    type Sql = Faultable<NativeSql>;
    type Kv = Faultable<MemKv>;
    type EventLog = Faultable<crate::events::SqlEventLog<NativeSql, FixedClock>>;
    type Blobs = Faultable<MemBlobs>;
    type Mailer = <TestPlatform as Platform>::Mailer;
    type Clock = FixedClock;
    type Random = SeededRandom;
    type Secrets = MapSecrets;
    type Logger = VecLogger;
    type Http = MapHttp;
    type Signatures = CountingVerifier;

    fn sql(&self) -> &Self::Sql {
        &self.sql
    }
    fn kv(&self) -> &Self::Kv {
        &self.kv
    }
    fn event_log(&self) -> &Self::EventLog {
        &self.events
    }
    fn blobs(&self) -> &Self::Blobs {
        &self.blobs
    }
    fn mailer(&self) -> &Self::Mailer {
        self.inner.mailer()
    }
    fn clock(&self) -> &FixedClock {
        &self.inner.clock
    }
    fn random(&self) -> &SeededRandom {
        &self.inner.random
    }
    fn secrets(&self) -> &MapSecrets {
        &self.inner.secrets
    }
    fn logger(&self) -> &VecLogger {
        &self.inner.logger
    }
    fn http(&self) -> &MapHttp {
        &self.inner.http
    }
    fn signatures(&self) -> &CountingVerifier {
        &self.inner.signatures
    }
    fn backends(&self) -> Backends {
        self.inner.backends()
    }
}

async fn platform() -> FaultPlatform {
    let inner = TestPlatform::new().await;
    inner
        .secrets
        .set(MASTER_KEY_SECRET, &STANDARD.encode([7u8; 32]));
    inner.secrets.set("EDGEPLANE_ENV", "development");
    FaultPlatform {
        sql: Faultable::new(inner.sql.clone()),
        kv: Faultable::new(inner.kv.clone()),
        events: Faultable::new(inner.event_log.clone()),
        blobs: Faultable::new(inner.blobs.clone()),
        inner,
    }
}

fn names(r: &store::JourneyRun) -> Vec<&str> {
    r.steps.iter().map(|s| s.step.as_str()).collect()
}

async fn count(p: &FaultPlatform, sql: &'static str) -> i64 {
    let rows = p.sql().query(Stmt::new(sql)).await.unwrap();
    rows[0].i64("n").unwrap()
}

#[test]
fn nfr_mon_003_a_journey_passes_every_step_on_a_healthy_platform() {
    block_on(async {
        let p = platform().await;
        let outcome = run(&p, START_MS).await.unwrap().unwrap();
        let r = &outcome.run;
        assert!(r.ok, "{r:?}");
        assert_eq!(outcome.cause, None);
        assert_eq!(
            names(r),
            [
                "setup",
                "sign_in",
                "second_factor",
                "introspect",
                "evaluate_flag",
                "ingest",
                "read_back",
                "sign_out",
                "provision",
                "purge"
            ]
        );
        assert!(r.lifecycle && r.failed_step.is_none());
        let stored = store::latest(&p).await.unwrap().unwrap();
        assert_eq!(&stored, r);
        // The journey's requests are not customers' traffic.
        let figures = metrics::figures(&p, START_MS).await.unwrap();
        assert!(
            figures.iter().all(|f| f.last_5m.requests == 0),
            "{figures:?}"
        );
        // Nothing secret in the log.
        let c = canary::ensure(&p).await.unwrap();
        for line in p.inner.logger.lines() {
            for secret in [&c.secrets.password, &c.secrets.api_key, &c.secrets.totp] {
                assert!(!line.contains(secret.as_str()), "{line}");
            }
        }
    });
}

#[test]
fn nfr_mon_003_a_failing_store_fails_its_step_and_the_journey_alert_fires_then_resolves() {
    block_on(async {
        let p = platform().await;
        let mut now = START_MS;
        assert!(run(&p, now).await.unwrap().unwrap().run.ok);
        alerts::evaluate(&p, now).await.unwrap();

        faults::set_mask(faults::mask_of(&[Port::EventLog]));
        now += 5 * MIN;
        p.inner.clock.set(now);
        let outcome = run(&p, now).await.unwrap().unwrap();
        faults::set_mask(0);
        let r = &outcome.run;
        assert!(!r.ok);
        assert_eq!(r.failed_step.as_deref(), Some("ingest"), "{r:?}");
        assert_eq!(names(r).last(), Some(&"ingest"), "stops at the failed step");
        let cause = outcome.cause.unwrap();
        assert!(
            cause.starts_with("ingest: POST /v1/billing/events answered 503"),
            "{cause}"
        );

        let o = alerts::evaluate(&p, now).await.unwrap();
        assert_eq!(o.fired, 1, "{o:?}");
        let journey = |all: Vec<alerts::Alert>| {
            all.into_iter()
                .find(|a| a.dedup_key == "edgeplane/journey/canary")
                .expect("the journey alert")
        };
        let a = journey(alerts::recent(&p).await.unwrap());
        assert_eq!(a.state, AlertState::Firing);
        assert!(
            a.summary.starts_with(
                "Synthetic journey failed at step ingest: POST /v1/billing/events answered 503"
            ),
            "{}",
            a.summary
        );
        assert_eq!(a.details["step"], "ingest");

        // Healed: one clear run keeps it firing, the second resolves it.
        for (i, want) in [AlertState::Firing, AlertState::Resolved]
            .into_iter()
            .enumerate()
        {
            now += 5 * MIN;
            p.inner.clock.set(now);
            assert!(run(&p, now).await.unwrap().unwrap().run.ok, "clear run {i}");
            alerts::evaluate(&p, now).await.unwrap();
            assert_eq!(journey(alerts::recent(&p).await.unwrap()).state, want);
        }
    });
}

#[test]
fn nfr_mon_003_with_sql_down_the_run_cannot_be_recorded_and_the_job_fails() {
    block_on(async {
        let p = platform().await;
        assert!(run(&p, START_MS).await.unwrap().unwrap().run.ok);
        faults::set_mask(faults::mask_of(&[Port::Sql]));
        p.inner.clock.set(START_MS + 5 * MIN);
        let r = run(&p, START_MS + 5 * MIN).await;
        faults::set_mask(0);
        assert!(store::latest(&p).await.unwrap().is_some_and(|r| r.ok));
        assert!(
            r.is_err(),
            "with SQL down the run cannot be recorded either"
        );
    });
}

#[test]
fn nfr_mon_003_the_canary_is_not_in_operator_listings_or_all_tenant_streams() {
    block_on(async {
        let p = platform().await;
        assert!(run(&p, START_MS).await.unwrap().unwrap().run.ok);
        let c = canary::ensure(&p).await.unwrap();
        assert!(canary::is_canary(p.sql(), &c.tenant_id).await.unwrap());
        let customer = "01900000-0000-7000-8000-00000000c0de";
        p.sql()
            .execute(
                Stmt::new(
                    "INSERT INTO tenants (id, name, domain, plan, created_at, updated_at)
                     VALUES (?1, 'Acme', 'acme', 'free', ?2, ?2)",
                )
                .bind(customer)
                .bind(START_MS),
            )
            .await
            .unwrap();
        let all = crate::tenants::list(&p, &crate::tenants::ListTenants::default())
            .await
            .unwrap();
        let ids: Vec<&str> = all.items.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, [customer], "only the customer is listed");
        let q = crate::tenants::ListTenants {
            q: Some("edgeplane".into()),
            ..Default::default()
        };
        assert!(crate::tenants::list(&p, &q).await.unwrap().items.is_empty());

        // The canary's billing stream exists (the journey ingested into it) but no all-tenant
        // export or summary reads it.
        crate::events::ingest::register_stream(
            p.sql(),
            &crate::ports::StreamId {
                kind: StreamKind::Billing,
                tenant: customer.to_owned(),
            },
            START_MS,
        )
        .await
        .unwrap();
        let every = crate::events::read::streams_after(p.sql(), StreamKind::Billing, "", 100)
            .await
            .unwrap();
        assert!(every.iter().any(|s| s.tenant == c.tenant_id));
        let customers =
            crate::events::read::customer_streams_after(p.sql(), StreamKind::Billing, "", 100)
                .await
                .unwrap();
        let tenants: Vec<&str> = customers.iter().map(|s| s.tenant.as_str()).collect();
        assert_eq!(tenants, [customer]);
    });
}

#[test]
fn nfr_mon_003_without_a_master_key_no_journey_runs() {
    block_on(async {
        let p = TestPlatform::new().await;
        assert!(run(&p, START_MS).await.unwrap().is_none());
        assert!(store::latest(&p).await.unwrap().is_none());
    });
}

#[test]
fn nfr_mon_003_two_runs_set_up_one_canary() {
    block_on(async {
        let p = platform().await;
        assert!(run(&p, START_MS).await.unwrap().unwrap().run.ok);
        let first = canary::ensure(&p).await.unwrap();
        p.inner.clock.set(START_MS + 5 * MIN);
        assert!(run(&p, START_MS + 5 * MIN).await.unwrap().unwrap().run.ok);
        let second = canary::ensure(&p).await.unwrap();
        assert_eq!(first.tenant_id, second.tenant_id);
        assert_eq!(first.secrets.api_key, second.secrets.api_key);
        let n = count(
            &p,
            "SELECT COUNT(*) AS n FROM tenants WHERE domain = 'edgeplane-canary'",
        )
        .await;
        assert_eq!(n, 1);
        assert_eq!(
            count(&p, "SELECT COUNT(*) AS n FROM journey_canary").await,
            1
        );
        let apps = "SELECT COUNT(*) AS n FROM apps WHERE owner_id = 'system:journeys'";
        assert_eq!(count(&p, apps).await, 1);
        // The secrets are sealed at rest.
        let rows = p
            .sql()
            .query(Stmt::new("SELECT secrets_enc FROM journey_canary"))
            .await
            .unwrap();
        let sealed = rows[0].text("secrets_enc").unwrap();
        assert!(!sealed.contains(&first.secrets.password));
        assert!(sealed.starts_with("v1."));
    });
}

#[test]
fn nfr_mon_003_a_throwaway_tenant_is_provisioned_and_purged_once_an_hour() {
    block_on(async {
        let p = platform().await;
        let hour = 60 * MIN;
        let mut expected = 0;
        let mut last_hour = None;
        for k in 0..25 {
            let now = START_MS + k * 5 * MIN;
            p.inner.clock.set(now);
            let r = run(&p, now).await.unwrap().unwrap().run;
            assert!(r.ok, "run {k}: {r:?}");
            let first_of_hour = last_hour != Some(now.div_euclid(hour));
            assert_eq!(r.lifecycle, first_of_hour, "run {k}");
            if first_of_hour {
                expected += 1;
                last_hour = Some(now.div_euclid(hour));
            }
        }
        assert!(expected >= 2);
        let purged = count(
            &p,
            "SELECT COUNT(*) AS n FROM tenants WHERE canary = 1 AND status = 'deleted'",
        )
        .await;
        assert_eq!(purged, expected);
        let live = count(
            &p,
            "SELECT COUNT(*) AS n FROM tenants WHERE canary = 1 AND status <> 'deleted'",
        )
        .await;
        assert_eq!(live, 1, "only the canary itself is left");
        // Pruned after 7 days.
        let later = START_MS + store::RETENTION_MS + 3 * hour;
        assert_eq!(store::expire(&p, later).await.unwrap(), 25);
    });
}

/// The hourly purge takes only its throwaway tenant: another tenant due for purge is left to
/// the purge job (and its report).
#[test]
fn nfr_mon_003_the_hourly_purge_leaves_other_due_tenants_to_the_purge_job() {
    block_on(async {
        let p = platform().await;
        let due = "01900000-0000-7000-8000-0000000000d0";
        p.sql()
            .execute(
                Stmt::new(
                    "INSERT INTO tenants (id, name, domain, plan, status, deletion_requested_at,
                       purge_after, created_at, updated_at)
                     VALUES (?1, 'Gone', 'gone', 'free', 'pending_deletion', ?2, ?2, ?2, ?2)",
                )
                .bind(due)
                .bind(START_MS - 31 * 24 * 60 * MIN),
            )
            .await
            .unwrap();
        let r = run(&p, START_MS).await.unwrap().unwrap().run;
        assert!(r.ok && r.lifecycle, "{r:?}");
        let status = p
            .sql()
            .query(Stmt::new("SELECT status FROM tenants WHERE id = ?1").bind(due))
            .await
            .unwrap();
        assert_eq!(status[0].text("status").unwrap(), "pending_deletion");
        let report = crate::tenants::purge_due(&p, START_MS).await.unwrap();
        assert_eq!(report.purged.len(), 1);
    });
}
