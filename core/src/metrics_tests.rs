use futures_executor::block_on;

use super::*;
use crate::ports::Clock;
use crate::testing::{FaultyPlatform, SeededRandom, TestPlatform};

const MINUTE: i64 = 60_000;

fn counts(durations: &[(i64, u64)]) -> Counts {
    let mut c = Counts::default();
    for (ms, n) in durations {
        for _ in 0..*n {
            c.add(200, *ms, 1);
        }
    }
    c
}

#[test]
fn fr_sys_005_buckets_and_quantiles_are_upper_bounds() {
    assert_eq!(bucket(0), 0);
    assert_eq!(bucket(1), 1);
    assert_eq!(bucket(29_999), BUCKETS - 2);
    assert_eq!(bucket(30_000), BUCKETS - 1);
    assert_eq!(bucket(-5), 0, "a clock that went back counts as instant");

    let c = counts(&[(3, 98), (600, 2)]);
    assert_eq!(c.quantile_ms(0.50), Some(5));
    assert_eq!(c.quantile_ms(0.98), Some(5));
    assert_eq!(c.quantile_ms(0.99), Some(1_000));
    assert_eq!(counts(&[(45_000, 1)]).quantile_ms(0.99), None);
    assert_eq!(Counts::default().quantile_ms(0.5), None);
    assert_eq!(Counts::default().error_rate(), 0.0);

    let mut mixed = Counts::default();
    mixed.add(200, 1, 1);
    mixed.add(404, 1, 1);
    mixed.add(503, 1, 2);
    assert_eq!(
        (mixed.requests, mixed.errors, mixed.client_errors),
        (4, 2, 1)
    );
    assert_eq!(mixed.error_rate(), 0.5);

    let mut merged = counts(&[(3, 1)]);
    merged.merge(&mixed);
    assert_eq!(merged.requests, 5);
    assert_eq!(merged.buckets[bucket(3)], 1);
    assert_eq!(merged.buckets[bucket(1)], 4);
}

#[test]
fn nfr_perf_001_an_isolate_flushes_every_ten_seconds_or_thousand_requests_never_per_request() {
    block_on(async {
        let _p = TestPlatform::new().await; // clears this thread's isolate
        let t0 = 1_000 * MINUTE;
        record("GET /health", Service::Other, 200, 1, t0, 1);
        assert!(
            !claim_flush(t0 + 9_999, false),
            "not due before ten seconds"
        );
        assert!(claim_flush(t0 + 10_000, false), "due after ten seconds");
        assert!(
            !claim_flush(t0 + 20_000, false),
            "claimed once until the flush ends"
        );
        assert!(
            claim_flush(t0 + 10_000 + CLAIM_TIMEOUT_MS, false),
            "a claim whose flush never came is void after a minute"
        );
        clear_isolate();

        for i in 0..FLUSH_REQUESTS {
            assert!(!claim_flush(t0, false), "not due after {i} requests");
            record("GET /health", Service::Other, 200, 1, t0, 1);
        }
        assert!(
            claim_flush(t0, false),
            "due after {FLUSH_REQUESTS} requests"
        );
        clear_isolate();

        assert!(!claim_flush(t0, true), "nothing to flush");
        record("GET /health", Service::Other, 200, 1, t0, 1);
        assert!(
            claim_flush(t0, true),
            "an instance per request flushes what it recorded at once"
        );
    });
}

#[test]
fn fr_sys_005_flushes_of_several_isolates_add_up_per_route_and_minute() {
    block_on(async {
        let p = TestPlatform::new().await;
        let now = p.clock.now_ms();
        record(
            "POST /oauth/introspect",
            Service::Introspection,
            200,
            3,
            now,
            1,
        );
        record(
            "POST /oauth/introspect",
            Service::Introspection,
            503,
            700,
            now,
            1,
        );
        record("GET /v1/tenants/{id}", Service::Admin, 404, 12, now, 1);
        assert_eq!(flush(&p, now).await.expect("flush"), 2);
        // Another isolate (or this one later) adds to the same rows.
        record(
            "POST /oauth/introspect",
            Service::Introspection,
            200,
            3,
            now,
            1,
        );
        assert_eq!(flush(&p, now).await.expect("flush"), 1);
        // Ten minutes ago: in the hour, not in the last five minutes.
        record(
            "POST /oauth/introspect",
            Service::Introspection,
            500,
            3,
            now - 10 * MINUTE,
            1,
        );
        flush(&p, now).await.expect("flush");

        let figures = figures(&p, now).await.expect("figures");
        let intro = figures
            .iter()
            .find(|f| f.service == Service::Introspection)
            .expect("introspection");
        assert_eq!(intro.last_5m.requests, 3);
        assert_eq!(intro.last_5m.errors, 1);
        assert!((intro.last_5m.error_rate - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(intro.last_5m.p50_ms, Some(5));
        assert_eq!(intro.last_5m.p99_ms, Some(1_000));
        assert_eq!(intro.last_60m.requests, 4);
        assert_eq!(intro.last_60m.errors, 2);
        let admin = figures
            .iter()
            .find(|f| f.service == Service::Admin)
            .expect("admin");
        assert_eq!(
            (
                admin.last_5m.requests,
                admin.last_5m.client_errors,
                admin.last_5m.errors
            ),
            (1, 1, 0)
        );
        let ofrep = figures
            .iter()
            .find(|f| f.service == Service::Ofrep)
            .expect("every service is reported");
        assert_eq!(ofrep.last_60m.requests, 0);
        assert_eq!(ofrep.last_60m.p99_ms, None);
        assert_eq!(figures.len(), Service::ALL.len());
    });
}

#[test]
fn fr_sys_005_what_is_not_flushed_yet_counts_in_this_isolate_figures() {
    block_on(async {
        let p = TestPlatform::new().await;
        let now = p.clock.now_ms();
        record("POST /v1/auth/login", Service::SignIn, 200, 40, now, 1);
        let figures = figures(&p, now).await.expect("figures");
        let sign_in = figures
            .iter()
            .find(|f| f.service == Service::SignIn)
            .expect("sign-in");
        assert_eq!(sign_in.last_5m.requests, 1);
        assert_eq!(sign_in.last_5m.p50_ms, Some(50));
    });
}

#[test]
fn fr_sys_005_a_failed_flush_keeps_the_counts_for_the_next_one() {
    block_on(async {
        let p = FaultyPlatform::over(TestPlatform::new().await);
        let now = p.inner.clock.now_ms();
        record("GET /v1/flags", Service::Ofrep, 200, 2, now, 1);
        record("GET /v1/flags", Service::Ofrep, 200, 2, now, 1);
        assert!(claim_flush(now + FLUSH_INTERVAL_MS, false));
        *p.sql.before_batch.borrow_mut() =
            Some("ALTER TABLE request_metrics RENAME TO request_metrics_gone".into());
        assert!(flush(&p, now).await.is_err(), "the table is gone");
        p.inner
            .sql
            .exec_raw("ALTER TABLE request_metrics_gone RENAME TO request_metrics")
            .expect("rename back");
        assert!(
            claim_flush(now + FLUSH_INTERVAL_MS, false),
            "the failed flush released its claim and the counts wait"
        );
        assert_eq!(flush(&p, now).await.expect("flush"), 1);
        clear_isolate();
        let figures = figures(&p, now).await.expect("figures");
        let ofrep = figures
            .iter()
            .find(|f| f.service == Service::Ofrep)
            .expect("ofrep");
        assert_eq!(
            ofrep.last_5m.requests, 2,
            "counted once, not lost, not doubled"
        );
    });
}

#[test]
fn fr_sys_005_rows_are_kept_seven_days() {
    block_on(async {
        let p = TestPlatform::new().await;
        let now = p.clock.now_ms();
        record(
            "GET /health",
            Service::Other,
            200,
            1,
            now - RETENTION_MINUTES * MINUTE - MINUTE,
            1,
        );
        record(
            "GET /health",
            Service::Other,
            200,
            1,
            now - RETENTION_MINUTES * MINUTE + MINUTE,
            1,
        );
        assert_eq!(flush(&p, now).await.expect("flush"), 2);
        assert_eq!(expire(&p, now).await.expect("expire"), 1);
    });
}

#[test]
fn fr_sys_005_an_instance_per_request_samples_one_in_a_hundred_and_counts_every_5xx() {
    let random = SeededRandom::new(7);
    assert_eq!(weight(&random, false, 200), 1);
    assert_eq!(weight(&random, true, 500), 1);
    let draws = 20_000;
    let mut sampled = 0;
    for _ in 0..draws {
        match weight(&random, true, 200) {
            0 => {}
            SAMPLE_ONE_IN => sampled += 1,
            other => panic!("weight {other}"),
        }
    }
    // 200 expected; the seeded draw is fixed, the bounds are 4.5 standard deviations.
    assert!(
        (137..=263).contains(&sampled),
        "{sampled} of {draws} sampled"
    );
}

#[test]
fn fr_sys_005_the_api_counts_each_answer_by_route_template_without_storage() {
    block_on(async {
        let p = FaultyPlatform::over(TestPlatform::new().await);
        for _ in 0..3 {
            let req = ::http::Request::get("/health")
                .body(Vec::new())
                .expect("request");
            crate::http::handle(&p, req).await;
        }
        let req = ::http::Request::post("/oauth/introspect")
            .body(b"token=x".to_vec())
            .expect("request");
        let resp = crate::http::handle(&p, req).await;
        assert_eq!(resp.status(), 401);
        let req = ::http::Request::get("/no/such/route")
            .body(Vec::new())
            .expect("request");
        crate::http::handle(&p, req).await;
        assert_eq!(p.sql.statements.get(), 0, "counting writes nothing");

        let now = p.inner.clock.now_ms();
        assert_eq!(flush(&p, now).await.expect("flush"), 3);
        let rows = p
        .inner
        .sql
        .query(Stmt::new(
            "SELECT route, service, requests, client_errors FROM request_metrics ORDER BY route",
        ))
        .await
        .expect("rows");
        let got: Vec<(String, String, i64, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r.text("route").expect("route"),
                    r.text("service").expect("service"),
                    r.i64("requests").expect("requests"),
                    r.i64("client_errors").expect("client_errors"),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("GET /health".to_owned(), "other".to_owned(), 3, 0),
                ("GET <unmatched>".to_owned(), "other".to_owned(), 1, 1),
                (
                    "POST /oauth/introspect".to_owned(),
                    "introspection".to_owned(),
                    1,
                    1
                ),
            ]
        );
    });
}
