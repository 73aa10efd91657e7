//! NFR-MON-002 on real SQLite with the migrations, the fixed clock and canned receivers
//! (`MapHttp`): the rules' thresholds, the state machine (fire, no flap, resolve after two clear
//! runs, re-notify), channel validation, the payloads each service documents, and whole runs.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_executor::block_on;
use hmac::{Hmac, Mac};
use serde_json::{json, Value as Json};
use sha2::Sha256;

use super::channels::{self, AlertChannelError, ChannelKind, NewChannel, PAGERDUTY_EVENTS_URL};
use super::notify::{self, Delivered, Notice};
use super::rules::{self, Condition, Observation, Rule, Thresholds};
use super::state::{self, AlertState, Transition};
use super::{evaluate, recent};
use crate::audit::Actor;
use crate::metrics::{self, Service};
use crate::ports::{Clock, Row, Sql, Stmt};
use crate::testing::{TestPlatform, START_MS};
use crate::tokens::master_key::MASTER_KEY_SECRET;

const MIN: i64 = 60_000;

fn bad(rule: Rule, subject: &str, summary: &str) -> Observation {
    Observation {
        rule,
        subject: subject.to_owned(),
        condition: Some(Condition {
            summary: summary.to_owned(),
            details: json!({ "n": 1 }),
        }),
    }
}

fn clear(rule: Rule, subject: &str) -> Observation {
    Observation {
        rule,
        subject: subject.to_owned(),
        condition: None,
    }
}

// ---------------------------------------------------------------------------------------------
// State machine
// ---------------------------------------------------------------------------------------------

#[test]
fn nfr_mon_002_fires_on_the_first_bad_run_and_resolves_after_two_clear_runs() {
    let t0 = START_MS;
    let (a, t) = state::step(None, &bad(Rule::Dependency, "kv", "kv down"), t0);
    let a = a.expect("a new alert is written");
    assert_eq!(t, Some(Transition::Fired));
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.dedup_key, "edgeplane/dependency/kv");
    assert_eq!(a.severity, "critical");
    assert_eq!(a.fired_at, t0);

    // Still bad: no transition, the latest summary.
    let (a, t) = state::step(
        Some(&a),
        &bad(Rule::Dependency, "kv", "kv still down"),
        t0 + 5 * MIN,
    );
    let a = a.unwrap();
    assert_eq!(t, None);
    assert_eq!((a.summary.as_str(), a.fired_at), ("kv still down", t0));

    // One clear run: still firing.
    let (a, t) = state::step(Some(&a), &clear(Rule::Dependency, "kv"), t0 + 10 * MIN);
    let a = a.unwrap();
    assert_eq!((t, a.state, a.clear_runs), (None, AlertState::Firing, 1));

    // Bad again: the clear streak starts over (no flapping).
    let (a, t) = state::step(
        Some(&a),
        &bad(Rule::Dependency, "kv", "kv down"),
        t0 + 15 * MIN,
    );
    let a = a.unwrap();
    assert_eq!((t, a.state, a.clear_runs), (None, AlertState::Firing, 0));
    let (a, _) = state::step(Some(&a), &clear(Rule::Dependency, "kv"), t0 + 20 * MIN);
    let a = a.unwrap();
    assert_eq!(a.state, AlertState::Firing);

    // Second clear run in a row: resolved.
    let (a, t) = state::step(Some(&a), &clear(Rule::Dependency, "kv"), t0 + 25 * MIN);
    let a = a.unwrap();
    assert_eq!(t, Some(Transition::Resolved));
    assert_eq!(a.state, AlertState::Resolved);
    assert_eq!(a.resolved_at, Some(t0 + 25 * MIN));
    assert_eq!(a.fired_at, t0);

    // Clear and resolved: nothing to write.
    assert_eq!(
        state::step(Some(&a), &clear(Rule::Dependency, "kv"), t0 + 30 * MIN),
        (None, None)
    );
    // A new episode: fires again with the same dedup key and a new fired_at.
    let (b, t) = state::step(
        Some(&a),
        &bad(Rule::Dependency, "kv", "again"),
        t0 + 35 * MIN,
    );
    let b = b.unwrap();
    assert_eq!(t, Some(Transition::Fired));
    assert_eq!(
        (b.dedup_key, b.fired_at, b.resolved_at),
        (a.dedup_key, t0 + 35 * MIN, None)
    );
}

#[test]
fn nfr_mon_002_notices_are_due_once_per_transition_and_at_the_renotify_interval() {
    let (a, _) = state::step(None, &bad(Rule::ErrorRate, "admin", "5xx"), START_MS);
    let firing = a.unwrap();
    let hour = 60 * MIN;
    let told = |state, at| Some(Delivered { state, at });
    assert_eq!(
        notify::due(&firing, None, START_MS, hour),
        Some(Notice::Fired)
    );
    let after = told(AlertState::Firing, START_MS);
    assert_eq!(notify::due(&firing, after, START_MS + 5 * MIN, hour), None);
    assert_eq!(notify::due(&firing, after, START_MS + hour - 1, hour), None);
    assert_eq!(
        notify::due(&firing, after, START_MS + hour, hour),
        Some(Notice::Renotified)
    );
    assert_eq!(
        notify::due(&firing, after, START_MS + 10 * hour, 0),
        None,
        "0: never"
    );
    // Told of an earlier episode only: this one is news.
    let earlier = told(AlertState::Resolved, START_MS - hour);
    assert_eq!(
        notify::due(&firing, earlier, START_MS, hour),
        Some(Notice::Fired)
    );

    let mut resolved = firing.clone();
    resolved.state = AlertState::Resolved;
    resolved.resolved_at = Some(START_MS + 20 * MIN);
    let now = START_MS + 20 * MIN;
    assert_eq!(
        notify::due(&resolved, after, now, hour),
        Some(Notice::Resolved)
    );
    assert_eq!(
        notify::due(&resolved, None, now, hour),
        None,
        "never told it fired"
    );
    let done = told(AlertState::Resolved, now);
    assert_eq!(notify::due(&resolved, done, now + 5 * MIN, hour), None);
    assert_eq!(
        notify::due(&resolved, after, now + notify::RESOLVED_RETRY_MS + 1, hour),
        None,
        "a resolution is retried for a day only"
    );
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

fn figures(service: Service, counts: &metrics::Counts) -> metrics::ServiceFigures {
    let w = metrics::Window {
        requests: counts.requests,
        errors: counts.errors,
        client_errors: counts.client_errors,
        error_rate: counts.error_rate(),
        p50_ms: counts.quantile_ms(0.5),
        p95_ms: counts.quantile_ms(0.95),
        p99_ms: counts.quantile_ms(0.99),
    };
    metrics::ServiceFigures {
        service,
        last_5m: w.clone(),
        last_60m: w,
    }
}

fn counts(ok: u64, errors: u64, ms: i64) -> metrics::Counts {
    let mut c = metrics::Counts::default();
    for _ in 0..ok {
        c.add(200, ms, 1);
    }
    for _ in 0..errors {
        c.add(503, ms, 1);
    }
    c
}

fn holds(obs: &[Observation], rule: Rule, subject: &str) -> Option<bool> {
    obs.iter()
        .find(|o| o.rule == rule && o.subject == subject)
        .map(|o| o.condition.is_some())
}

#[test]
fn nfr_mon_002_error_rate_needs_enough_requests_and_latency_compares_with_the_slo() {
    let t = Thresholds::default();
    let cases = [
        // (ok, 5xx, ms, error_rate fires, latency fires)
        (2, 1, 3, false, false),   // 1 of 3: too few requests to judge
        (48, 2, 3, true, false),   // 4% of 50
        (99, 1, 3, false, false),  // exactly 1%: not above
        (30, 0, 300, false, true), // p99 in the 500 ms bucket, SLO 250
        (30, 0, 200, false, false),
        (30, 0, 60_000, false, true), // beyond the last bound
    ];
    for (ok, errors, ms, rate, slow) in cases {
        let f = [figures(Service::Introspection, &counts(ok, errors, ms))];
        let obs = rules::judge_services(&f, &t);
        let case = format!("{ok} ok, {errors} 5xx, {ms} ms");
        assert_eq!(
            holds(&obs, Rule::ErrorRate, "introspection"),
            Some(rate),
            "{case}"
        );
        assert_eq!(
            holds(&obs, Rule::LatencyP99, "introspection"),
            Some(slow),
            "{case}"
        );
    }
    let f = [figures(Service::Other, &counts(0, 50, 3))];
    assert!(
        rules::judge_services(&f, &t).is_empty(),
        "`other` is not watched"
    );

    let f = [figures(Service::SignIn, &counts(48, 2, 3))];
    let obs = rules::judge_services(&f, &t);
    let c = obs[0].condition.as_ref().unwrap();
    assert_eq!(
        c.summary,
        "Error rate of sign_in is 4.00% over 5 minutes (2 of 50 requests failed, threshold 1.00%)"
    );
    assert_eq!(c.details["errors"], json!(2));
}

#[test]
fn nfr_mon_002_thresholds_come_from_alert_variables_and_bad_ones_are_ignored() {
    let p = block_on(TestPlatform::new());
    let (t, warnings) = Thresholds::from_secrets(&p.secrets);
    assert_eq!(t, Thresholds::default());
    assert!(warnings.is_empty());
    assert_eq!(t.slo_ms(Service::SignIn), Some(2_500));
    assert_eq!(t.slo_ms(Service::Other), None);

    p.secrets.set(rules::ERROR_RATE_VAR, "5%");
    p.secrets.set(rules::MIN_REQUESTS_VAR, "3");
    p.secrets.set(rules::P99_VAR, "ofrep=100, admin=5000");
    p.secrets.set(rules::RENOTIFY_VAR, "15");
    let (t, warnings) = Thresholds::from_secrets(&p.secrets);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!((t.error_rate - 0.05).abs() < 1e-12);
    assert_eq!(t.min_requests, 3);
    assert_eq!(t.slo_ms(Service::Ofrep), Some(100));
    assert_eq!(t.slo_ms(Service::Admin), Some(5_000));
    assert_eq!(t.slo_ms(Service::SignIn), Some(2_500));
    assert_eq!(t.renotify_ms, 15 * MIN);

    for (var, value) in [
        (rules::ERROR_RATE_VAR, "1.5"),
        (rules::MIN_REQUESTS_VAR, "0"),
        (rules::P99_VAR, "other=10"),
        (rules::RENOTIFY_VAR, "-1"),
    ] {
        p.secrets.set(var, value);
    }
    let (t, warnings) = Thresholds::from_secrets(&p.secrets);
    assert_eq!(t, Thresholds::default());
    assert_eq!(warnings.len(), 4, "{warnings:?}");
}

// ---------------------------------------------------------------------------------------------
// Channels
// ---------------------------------------------------------------------------------------------

fn input(kind: &str) -> NewChannel {
    NewChannel {
        kind: kind.to_owned(),
        ..NewChannel::default()
    }
}

fn field_of(e: AlertChannelError) -> &'static str {
    match e {
        AlertChannelError::Invalid(field, _) | AlertChannelError::Refused(field, _) => field,
        other => panic!("not a field error: {other:?}"),
    }
}

#[test]
fn nfr_mon_002_channel_validation() {
    let err = |i: &NewChannel, dev| field_of(channels::validate(i, dev).unwrap_err());
    assert_eq!(err(&input("sms"), true), "kind");
    assert_eq!(err(&input("slack"), true), "url");
    assert_eq!(err(&input("email"), true), "to");
    assert_eq!(err(&input("pagerduty"), true), "routing_key");

    let slack = |url: &str| NewChannel {
        url: Some(url.to_owned()),
        ..input("slack")
    };
    // Outside development only https to a public host.
    assert_eq!(
        err(&slack("http://hooks.slack.com/services/x"), false),
        "url"
    );
    assert_eq!(err(&slack("http://127.0.0.1:9000/hook"), false), "url");
    assert_eq!(err(&slack("https://10.0.0.1/hook"), false), "url");
    assert_eq!(err(&slack("https://169.254.169.254/latest"), false), "url");
    assert!(channels::validate(&slack("https://hooks.slack.com/services/T/B/x"), false).is_ok());
    // Development: loopback over http too, nothing else internal.
    assert!(channels::validate(&slack("http://127.0.0.1:9000/hook"), true).is_ok());
    assert_eq!(err(&slack("http://10.0.0.1/hook"), true), "url");

    let mixed = NewChannel {
        routing_key: Some("abc".to_owned()),
        ..slack("https://hooks.slack.com/services/T/B/x")
    };
    assert_eq!(err(&mixed, false), "routing_key", "a field of another kind");

    let pd = NewChannel {
        routing_key: Some("R0UT1NGKEY".to_owned()),
        ..input("pagerduty")
    };
    let (kind, name, config) = channels::validate(&pd, false).unwrap();
    assert_eq!((kind, name.as_str()), (ChannelKind::Pagerduty, "pagerduty"));
    assert_eq!(config.url.as_deref(), Some(PAGERDUTY_EVENTS_URL));
    assert_eq!(
        channels::hint(kind, &config),
        "routing key …GKEY via https://events.pagerduty.com"
    );

    let hook = NewChannel {
        url: Some("https://example.com/hooks/edgeplane".to_owned()),
        secret: Some("short".to_owned()),
        ..input("webhook")
    };
    assert_eq!(err(&hook, false), "secret");
    let email = NewChannel {
        to: Some("not an address".to_owned()),
        ..input("email")
    };
    assert_eq!(err(&email, false), "to");
}

// ---------------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------------

fn firing_alert() -> state::Alert {
    let obs = bad(
        Rule::ErrorRate,
        "sign_in",
        "Error rate of sign_in is 4.00% over 5 minutes (2 of 50 requests failed, threshold 1.00%)",
    );
    state::step(None, &obs, START_MS).0.unwrap()
}

#[test]
fn nfr_mon_002_pagerduty_events_follow_the_events_api_v2() {
    let a = firing_alert();
    let trigger = notify::pagerduty_body(&a, Notice::Fired, "KEY", "edgeplane.example.com");
    assert_eq!(
        trigger,
        json!({
            "routing_key": "KEY",
            "event_action": "trigger",
            "dedup_key": "edgeplane/error_rate/sign_in",
            "client": "Edgeplane",
            "payload": {
                "summary": a.summary,
                "source": "edgeplane.example.com",
                "severity": "error",
                "timestamp": "2026-01-01T00:00:00.000Z",
                "component": "sign_in",
                "group": "key_services",
                "class": "error_rate",
                "custom_details": { "n": 1 },
            },
        })
    );
    let resolve = notify::pagerduty_body(&a, Notice::Resolved, "KEY", "x");
    assert_eq!(
        resolve,
        json!({ "routing_key": "KEY", "event_action": "resolve", "dedup_key": a.dedup_key })
    );
}

#[test]
fn nfr_mon_002_slack_text_webhook_signature_and_mail() {
    let a = firing_alert();
    assert_eq!(
        notify::slack_body(&a, Notice::Fired),
        json!({ "text": format!("[FIRING] {} (severity error, firing since 2026-01-01T00:00:00.000Z; alert edgeplane/error_rate/sign_in)", a.summary) })
    );
    assert_eq!(
        notify::slack_text(&a, Notice::Resolved),
        format!(
            "[RESOLVED] {} (resolved; alert edgeplane/error_rate/sign_in)",
            a.summary
        )
    );

    let body = notify::webhook_body(&a, Notice::Fired, "id-1", START_MS, "edgeplane");
    assert_eq!(body["type"], json!("alert.fired"));
    assert_eq!(body["alert"]["dedup_key"], json!(a.dedup_key));
    assert_eq!(body["alert"]["state"], json!("firing"));
    assert!(body["alert"].get("clear_runs").is_none());
    let bytes = body.to_string().into_bytes();
    let sig = notify::webhook_signature("whsec_test", 1_767_225_600, &bytes);
    let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test").unwrap();
    mac.update(format!("1767225600.{}", body).as_bytes());
    let expected = crate::crypto::hex(&mac.finalize().into_bytes());
    assert_eq!(sig, format!("v1={expected}"));

    let m = notify::mail(&a, Notice::Fired, "ops@example.com", "edgeplane");
    assert_eq!(m.subject, format!("[Edgeplane FIRING] {}", a.summary));
    assert!(m.text.contains("Alert: edgeplane/error_rate/sign_in"));
    let mut b = a.clone();
    b.summary = "<script>".to_owned();
    assert!(notify::mail(&b, Notice::Fired, "x@example.com", "e")
        .html
        .contains("&lt;script&gt;"));
}

// ---------------------------------------------------------------------------------------------
// Whole runs
// ---------------------------------------------------------------------------------------------

const SLACK: &str = "https://hooks.slack.com/services/T0/B0/secretpart";
const PD: &str = "https://events.pagerduty.com/v2/enqueue";
const HOOK: &str = "https://receiver.example.com/edgeplane";

async fn platform_with_channels() -> (TestPlatform, Option<String>) {
    let p = TestPlatform::new().await;
    p.secrets
        .set(MASTER_KEY_SECRET, &STANDARD.encode([7u8; 32]));
    let op = Actor::operator("op-1");
    let mk = |kind: &str, f: &dyn Fn(&mut NewChannel)| {
        let mut i = input(kind);
        f(&mut i);
        i
    };
    let inputs = [
        mk("slack", &|i| i.url = Some(SLACK.to_owned())),
        mk("pagerduty", &|i| {
            i.routing_key = Some("PDKEY123".to_owned())
        }),
        mk("webhook", &|i| i.url = Some(HOOK.to_owned())),
        mk("email", &|i| i.to = Some("oncall@example.com".to_owned())),
    ];
    let mut secret = None;
    for i in &inputs {
        let created = channels::create(&p, &op, i, "req-1").await.unwrap();
        if created.view.kind == ChannelKind::Webhook {
            secret = created.generated_secret;
        }
    }
    for url in [SLACK, PD, HOOK] {
        p.http.set(url, 200, "{}");
    }
    (p, secret)
}

/// Records `n` 5xx answers of the admin service in this isolate's memory now.
fn admin_errors(p: &TestPlatform, n: u64) {
    metrics::record(
        "GET /v1/tenants",
        Service::Admin,
        503,
        3,
        p.clock.now_ms(),
        n,
    );
}

async fn audit_actions(p: &TestPlatform) -> Vec<String> {
    let rows: Vec<Row> = p
        .sql
        .query(Stmt::new(
            "SELECT action FROM audit_outbox WHERE action LIKE 'alert.%' ORDER BY seq",
        ))
        .await
        .unwrap();
    rows.iter().map(|r| r.text("action").unwrap()).collect()
}

fn requests_to(p: &TestPlatform, url: &str) -> Vec<Json> {
    p.http
        .requests()
        .iter()
        .filter(|r| r.url == url)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[test]
fn nfr_mon_002_a_run_fires_notifies_every_channel_once_and_resolves_after_two_clear_runs() {
    block_on(async {
        let (p, secret) = platform_with_channels().await;
        let secret = secret.expect("a generated webhook secret");
        assert!(secret.starts_with("whsec_") && secret.len() == 6 + 64);
        let listed = channels::list(&p).await.unwrap();
        assert_eq!(listed.len(), 4);
        let shown = serde_json::to_string(&listed).unwrap();
        for hidden in ["secretpart", "PDKEY123", "oncall@", &secret] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }

        admin_errors(&p, 30);
        let out = evaluate(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!(
            (out.fired, out.delivered, out.failed),
            (1, 4, 0),
            "{:?}",
            out.causes
        );
        let slack = requests_to(&p, SLACK);
        assert_eq!(slack.len(), 1);
        assert!(slack[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING] Error rate of admin is 100.00%"));
        let pd = requests_to(&p, PD);
        assert_eq!(pd[0]["event_action"], json!("trigger"));
        assert_eq!(pd[0]["dedup_key"], json!("edgeplane/error_rate/admin"));
        assert_eq!(pd[0]["routing_key"], json!("PDKEY123"));
        let hook = p
            .http
            .requests()
            .into_iter()
            .find(|r| r.url == HOOK)
            .unwrap();
        let header = |n: &str| {
            hook.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        let ts: i64 = header(notify::TIMESTAMP_HEADER).unwrap().parse().unwrap();
        assert_eq!(
            header(notify::SIGNATURE_HEADER).unwrap(),
            notify::webhook_signature(&secret, ts, &hook.body)
        );
        let mails = p
            .mailer
            .messages_to("oncall@example.com", 10)
            .await
            .unwrap();
        assert_eq!(mails.len(), 1);
        assert!(mails[0]
            .mail
            .subject
            .starts_with("[Edgeplane FIRING] Error rate of admin"));
        assert_eq!(audit_actions(&p).await, ["alert.fired"]);

        // Five minutes on, still failing: no second notice before the interval.
        p.clock.advance(5 * MIN);
        admin_errors(&p, 30);
        let out = evaluate(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!((out.fired, out.delivered), (0, 0));

        // The errors age out of the 5-minute window: two clear runs resolve it.
        metrics::clear_isolate();
        p.clock.advance(5 * MIN);
        let out = evaluate(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!(
            (out.resolved, out.delivered),
            (0, 0),
            "one clear run is not enough"
        );
        p.clock.advance(5 * MIN);
        let out = evaluate(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!((out.resolved, out.delivered), (1, 4), "{:?}", out.causes);
        let pd = requests_to(&p, PD);
        assert_eq!(
            pd[1],
            json!({"routing_key": "PDKEY123", "event_action": "resolve", "dedup_key": "edgeplane/error_rate/admin"})
        );
        assert!(requests_to(&p, SLACK)[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("[RESOLVED] "));
        assert_eq!(requests_to(&p, HOOK)[1]["type"], json!("alert.resolved"));
        assert_eq!(audit_actions(&p).await, ["alert.fired", "alert.resolved"]);
        let shown = recent(&p).await.unwrap();
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].state, AlertState::Resolved);

        // Nothing more after that.
        p.clock.advance(5 * MIN);
        let out = evaluate(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!(out.delivered, 0);
    });
}

#[test]
fn nfr_mon_002_a_failed_delivery_is_logged_without_secrets_and_retried_next_run() {
    block_on(async {
        let (p, _) = platform_with_channels().await;
        p.http.set(SLACK, 500, "no");
        admin_errors(&p, 30);
        let out = evaluate(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!((out.delivered, out.failed), (3, 1));
        let causes = out.causes.join("\n");
        assert!(causes.contains("answered 500"), "{causes}");
        assert!(
            !causes.contains("secretpart") && !causes.contains("hooks.slack"),
            "{causes}"
        );

        p.http.set(SLACK, 200, "ok");
        p.clock.advance(5 * MIN);
        admin_errors(&p, 30);
        let out = evaluate(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!(
            (out.delivered, out.failed),
            (1, 0),
            "only the failed channel again"
        );
        assert_eq!(requests_to(&p, SLACK).len(), 2);
        assert_eq!(requests_to(&p, PD).len(), 1);
    });
}

#[test]
fn nfr_mon_002_firing_alerts_are_renotified_at_the_interval() {
    block_on(async {
        let (p, _) = platform_with_channels().await;
        p.secrets.set(rules::RENOTIFY_VAR, "10");
        admin_errors(&p, 30);
        evaluate(&p, p.clock.now_ms()).await.unwrap();
        for _ in 0..2 {
            p.clock.advance(5 * MIN);
            admin_errors(&p, 30);
            let out = evaluate(&p, p.clock.now_ms()).await.unwrap();
            let expected = if p.clock.now_ms() - START_MS >= 10 * MIN {
                4
            } else {
                0
            };
            assert_eq!(out.delivered, expected);
        }
        let slack = requests_to(&p, SLACK);
        assert!(slack[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("[STILL FIRING] "));
        assert_eq!(requests_to(&p, HOOK)[1]["type"], json!("alert.renotified"));
    });
}

#[test]
fn nfr_mon_002_deleting_a_channel_stops_its_notices() {
    block_on(async {
        let (p, _) = platform_with_channels().await;
        let op = Actor::operator("op-1");
        let slack = channels::list(&p)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.kind == ChannelKind::Slack)
            .unwrap();
        channels::delete(&p, &op, &slack.id, "req-2").await.unwrap();
        assert_eq!(
            channels::delete(&p, &op, &slack.id, "req-3").await,
            Err(AlertChannelError::NotFound)
        );
        admin_errors(&p, 30);
        let out = evaluate(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!(out.delivered, 3);
        assert!(requests_to(&p, SLACK).is_empty());
    });
}

// ---------------------------------------------------------------------------------------------
// Event-pipeline lag
// ---------------------------------------------------------------------------------------------

#[test]
fn nfr_mon_002_pipeline_lag_threshold_defaults_to_15_minutes_and_is_set_in_seconds() {
    let p = block_on(TestPlatform::new());
    let (t, warnings) = Thresholds::from_secrets(&p.secrets);
    assert_eq!((t.pipeline_lag_ms, warnings.len()), (15 * MIN, 0));
    p.secrets.set(rules::PIPELINE_LAG_VAR, "90");
    assert_eq!(
        Thresholds::from_secrets(&p.secrets).0.pipeline_lag_ms,
        90_000
    );
    for bad in ["0", "-5", "1.5", "ten", "604801"] {
        p.secrets.set(rules::PIPELINE_LAG_VAR, bad);
        let (t, warnings) = Thresholds::from_secrets(&p.secrets);
        assert_eq!(t.pipeline_lag_ms, 15 * MIN, "{bad}");
        assert_eq!(warnings.len(), 1, "{bad}");
    }
}

/// An event acknowledged into the log and not archived (the flush stalled) fires
/// `pipeline_lag` once it waited longer than the threshold; archiving it clears the condition,
/// and two clear runs resolve the alert.
#[test]
fn nfr_mon_002_a_stalled_pipeline_fires_the_lag_alert_and_archiving_resolves_it() {
    block_on(async {
        let p = TestPlatform::new().await;
        let stream = crate::ports::StreamId {
            kind: crate::ports::StreamKind::Billing,
            tenant: "t-lag".to_owned(),
        };
        crate::events::ingest::register_stream(&p.sql, &stream, START_MS)
            .await
            .unwrap();
        let lag_alert = |all: Vec<super::Alert>| {
            all.into_iter()
                .find(|a| a.dedup_key == "edgeplane/pipeline_lag/events")
        };
        // Nothing waits: clear.
        evaluate(&p, START_MS).await.unwrap();
        assert!(lag_alert(recent(&p).await.unwrap()).is_none());

        use crate::ports::EventLog as _;
        p.event_log
            .append(
                &stream,
                vec![crate::ports::NewEvent {
                    id: "e-1".into(),
                    occurred_at_ms: START_MS,
                    body: r#"{"id":"e-1","type":"api.call","quantity":1}"#.into(),
                }],
            )
            .await
            .unwrap();
        // Within the threshold: clear.
        p.clock.set(START_MS + 10 * MIN);
        evaluate(&p, START_MS + 10 * MIN).await.unwrap();
        assert!(lag_alert(recent(&p).await.unwrap()).is_none());
        // Past it: fires, naming the stream.
        p.clock.set(START_MS + 16 * MIN);
        let o = evaluate(&p, START_MS + 16 * MIN).await.unwrap();
        assert_eq!(o.fired, 1, "{o:?}");
        let a = lag_alert(recent(&p).await.unwrap()).unwrap();
        assert_eq!(
            (a.state, a.severity.as_str()),
            (AlertState::Firing, "warning")
        );
        assert!(a.summary.contains("billing/t-lag"), "{}", a.summary);
        assert_eq!(a.details["lag_ms"], json!(16 * MIN));

        // Archived: two clear runs resolve it.
        let flushed = crate::events::jobs::flush_all(&p, START_MS + 17 * MIN)
            .await
            .unwrap();
        assert_eq!(flushed.events, 1);
        for (i, want) in [AlertState::Firing, AlertState::Resolved]
            .into_iter()
            .enumerate()
        {
            let now = START_MS + (20 + 5 * i as i64) * MIN;
            p.clock.set(now);
            evaluate(&p, now).await.unwrap();
            assert_eq!(lag_alert(recent(&p).await.unwrap()).unwrap().state, want);
        }
    });
}
