//! The pipeline end to end on real SQLite: ingest, flush, export, usage, verify, retention,
//! outbox forwarding and purge.

use std::collections::BTreeSet;

use futures_executor::block_on;
use serde_json::{json, Value as Json};

use super::anchor::{AnchorKey, AnchorKeyProblem, AnchorKeys, KEY_SECRET};
use super::archive::{decode, encode, flush_stream, gzip, pack, unpack, ArchiveError, FLUSH_BATCH};
use super::ingest::{ingest, IngestError, Reporter};
use super::jobs::{enforce_retention, flush_all, forward_outbox, purge_tenant_events};
use super::read::{page, usage_by_day, verify, BreakCode, Period};
use crate::ports::{Blobs, Clock, EventLog, Sql, Stmt, StreamId, StreamKind};
use crate::testing::{TestPlatform, START_MS};
use crate::time::{format_rfc3339, years_before};

fn bound(tenant: &str) -> Reporter {
    Reporter {
        app_id: "app1".into(),
        tenant_id: Some(tenant.into()),
    }
}

fn billing(id: &str, ty: &str, qty: i64, at: i64) -> Json {
    json!({"id": id, "type": ty, "quantity": qty, "timestamp": format_rfc3339(at)})
}

fn audit(id: &str, action: &str) -> Json {
    json!({"id": id, "timestamp": format_rfc3339(START_MS), "actor_id": "u1", "type": action,
           "resource_id": "doc:1", "outcome": "success", "ip": "192.0.2.1"})
}

/// The platform's anchor keys.
fn keys(p: &TestPlatform) -> AnchorKeys {
    AnchorKeys::load(&p.secrets)
}

/// The key that anchors the platform's archives.
fn signer(p: &TestPlatform) -> AnchorKey {
    keys(p).signer().unwrap().clone()
}

fn stream(kind: StreamKind, tenant: &str) -> StreamId {
    StreamId {
        kind,
        tenant: tenant.into(),
    }
}

async fn ingest_n(p: &TestPlatform, tenant: &str, from: usize, n: usize) {
    let events: Vec<Json> = (from..from + n)
        .map(|i| billing(&format!("e{i}"), "api.call", 1, START_MS + i as i64))
        .collect();
    for chunk in events.chunks(FLUSH_BATCH as usize) {
        let out = ingest(
            p,
            StreamKind::Billing,
            &bound(tenant),
            &json!({ "events": chunk }),
            None,
        )
        .await
        .unwrap();
        assert_eq!(out.accepted as usize, chunk.len());
    }
}

async fn all_seqs(p: &TestPlatform, s: &StreamId, limit: usize) -> Vec<i64> {
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let (items, next) = page(p, s, after, Period::default(), limit, |_| true)
            .await
            .unwrap();
        seen.extend(items.iter().map(|r| r.seq));
        match next {
            Some(n) => after = n,
            None => return seen,
        }
    }
}

/// FR-BILL-002: a retried batch is applied once; a bad event stores nothing.
#[test]
fn ingest_dedupes_and_rejects_whole_batches() {
    block_on(async {
        let p = TestPlatform::new().await;
        let body =
            json!({"events": [billing("a", "x", 1, START_MS), billing("b", "x", 2, START_MS)]});
        let first = ingest(&p, StreamKind::Billing, &bound("t1"), &body, None)
            .await
            .unwrap();
        assert_eq!(
            (first.received, first.accepted, first.duplicates),
            (2, 2, 0)
        );
        let again = ingest(&p, StreamKind::Billing, &bound("t1"), &body, None)
            .await
            .unwrap();
        assert_eq!((again.accepted, again.duplicates), (0, 2));

        let bad =
            json!({"events": [billing("c", "x", 1, START_MS), billing("d", "x", -1, START_MS)]});
        let e = ingest(&p, StreamKind::Billing, &bound("t1"), &bad, None)
            .await
            .unwrap_err();
        assert_eq!(e.field(), Some((1, "quantity")));
        let s = stream(StreamKind::Billing, "t1");
        assert_eq!(p.event_log.read(&s, 0, 10).await.unwrap().len(), 2);

        // Without ids, the Idempotency-Key makes a retry recognisable.
        let no_ids = json!([{"type": "x", "quantity": 1, "timestamp": "2026-01-01T00:00:00Z"}]);
        let e = ingest(&p, StreamKind::Billing, &bound("t1"), &no_ids, None)
            .await
            .unwrap_err();
        assert!(matches!(e, IngestError::IdRequired { index: 0 }));
        for expected in [(1, 0), (0, 1)] {
            let out = ingest(&p, StreamKind::Billing, &bound("t1"), &no_ids, Some("k1"))
                .await
                .unwrap();
            assert_eq!((out.accepted, out.duplicates), expected);
        }
        // A tenant-bound key cannot write to another tenant.
        let other = json!({"id": "z", "tenant_id": "t2", "type": "x", "quantity": 1, "timestamp": "2026-01-01T00:00:00Z"});
        let e = ingest(&p, StreamKind::Billing, &bound("t1"), &other, None)
            .await
            .unwrap_err();
        assert_eq!(e, IngestError::UnknownTenant);
        // An app-wide key must name a tenant that has the app enabled.
        let wide = Reporter {
            app_id: "app1".into(),
            tenant_id: None,
        };
        let e = ingest(&p, StreamKind::Billing, &wide, &other, None)
            .await
            .unwrap_err();
        assert_eq!(e, IngestError::UnknownTenant);
        let e = ingest(
            &p,
            StreamKind::Billing,
            &wide,
            &billing("y", "x", 1, START_MS),
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, IngestError::TenantRequired { index: 0 }));
    });
}

/// FR-BILL-003: every event exactly once across pages, whether archived or in the tail, and
/// whatever flushes happen between pages.
#[test]
fn export_pages_exactly_once_across_archives_and_tail() {
    block_on(async {
        let p = TestPlatform::new().await;
        let s = stream(StreamKind::Billing, "t1");
        ingest_n(&p, "t1", 0, 2500).await;
        let r = flush_all(&p, START_MS).await.unwrap();
        assert_eq!((r.objects, r.events), (3, 2500));
        assert!(p.event_log.read(&s, 0, 10).await.unwrap().is_empty());
        ingest_n(&p, "t1", 2500, 120).await;
        let want: Vec<i64> = (1..=2620).collect();
        assert_eq!(all_seqs(&p, &s, 333).await, want);
        assert_eq!(all_seqs(&p, &s, 1000).await, want);

        // Flush between pages: the cursor still yields each event once.
        let (first, next) = page(&p, &s, 0, Period::default(), 2550, |_| true)
            .await
            .unwrap();
        assert_eq!(first.len(), 2550);
        flush_all(&p, START_MS).await.unwrap();
        ingest_n(&p, "t1", 2620, 5).await;
        let (rest, end) = page(&p, &s, next.unwrap(), Period::default(), 1000, |_| true)
            .await
            .unwrap();
        assert_eq!(rest.first().map(|r| r.seq), Some(2551));
        assert_eq!(rest.len(), 75);
        assert_eq!(end, None);

        // A retry of archived events is still recognised.
        let again = ingest(
            &p,
            StreamKind::Billing,
            &bound("t1"),
            &billing("e7", "api.call", 1, START_MS),
            None,
        )
        .await
        .unwrap();
        assert_eq!(again.duplicates, 1);
    });
}

/// Archive objects are keyed by kind, tenant, day and range, and hold NDJSON.
#[test]
fn flush_writes_immutable_ndjson_objects_and_indexes_them() {
    block_on(async {
        let p = TestPlatform::new().await;
        ingest_n(&p, "t1", 0, 3).await;
        p.clock.advance(86_400_000);
        ingest_n(&p, "t1", 3, 2).await;
        let s = stream(StreamKind::Billing, "t1");
        let r = flush_stream(
            &p.event_log,
            &p.blobs,
            &p.sql,
            &signer(&p),
            &s,
            p.clock.now_ms(),
        )
        .await
        .unwrap();
        assert_eq!(r.objects, 2, "split at midnight");
        let keys = p.blobs.list("billing/t1/", None, 100).await.unwrap().keys;
        assert_eq!(
            keys,
            vec![
                "billing/t1/2026/01/01/1-3.ndjson.gz",
                "billing/t1/2026/01/02/4-5.ndjson.gz"
            ]
        );
        assert_eq!(
            p.blobs.content_type(&keys[0]).as_deref(),
            Some("application/gzip")
        );
        let bytes = p.blobs.get(&keys[0]).await.unwrap().unwrap();
        let records = decode(&keys[0], bytes.clone()).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(encode(&records).unwrap(), unpack(&keys[0], bytes).unwrap());
        let rows = p
            .sql
            .query(Stmt::new(
                "SELECT first_hash, last_hash, count FROM archive_index ORDER BY first_seq",
            ))
            .await
            .unwrap();
        assert_eq!(rows[0].text("first_hash").unwrap(), records[0].hash);
        assert_eq!(rows[0].text("last_hash").unwrap(), records[2].hash);
        // A second flush has nothing to do.
        let again = flush_stream(
            &p.event_log,
            &p.blobs,
            &p.sql,
            &signer(&p),
            &s,
            p.clock.now_ms(),
        )
        .await
        .unwrap();
        assert_eq!(again.objects, 0);
    });
}

/// An event log whose `truncate` fails: a flush that dies after indexing its object.
struct NoTruncate<'a>(&'a TestPlatform);

impl EventLog for NoTruncate<'_> {
    async fn append(
        &self,
        s: &StreamId,
        e: Vec<crate::ports::NewEvent>,
    ) -> Result<crate::ports::AppendOutcome, crate::ports::EventLogError> {
        self.0.event_log.append(s, e).await
    }
    async fn read(
        &self,
        s: &StreamId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<crate::ports::StoredEvent>, crate::ports::EventLogError> {
        self.0.event_log.read(s, after, limit).await
    }
    async fn truncate(&self, _: &StreamId, _: i64) -> Result<u64, crate::ports::EventLogError> {
        Err(crate::ports::EventLogError::Unavailable("injected".into()))
    }
    async fn drop_stream(&self, s: &StreamId) -> Result<(), crate::ports::EventLogError> {
        self.0.event_log.drop_stream(s).await
    }
    async fn ping(&self) -> Result<(), crate::ports::EventLogError> {
        Ok(())
    }
}

/// A flush interrupted after indexing (before dropping the tail) is completed by the next,
/// and meanwhile reads see each event once.
#[test]
fn an_interrupted_flush_is_finished_without_duplicates() {
    block_on(async {
        let p = TestPlatform::new().await;
        ingest_n(&p, "t1", 0, 10).await;
        let s = stream(StreamKind::Billing, "t1");
        assert!(
            flush_stream(&NoTruncate(&p), &p.blobs, &p.sql, &signer(&p), &s, START_MS)
                .await
                .is_err()
        );
        assert_eq!(
            p.event_log.read(&s, 0, 100).await.unwrap().len(),
            10,
            "tail kept"
        );
        ingest_n(&p, "t1", 10, 2).await;
        assert_eq!(all_seqs(&p, &s, 5).await, (1..=12).collect::<Vec<_>>());
        let r = flush_stream(&p.event_log, &p.blobs, &p.sql, &signer(&p), &s, START_MS)
            .await
            .unwrap();
        assert_eq!(r.events, 2);
        assert!(p.event_log.read(&s, 0, 100).await.unwrap().is_empty());
        assert_eq!(all_seqs(&p, &s, 5).await, (1..=12).collect::<Vec<_>>());
        assert!(verify(&p, &s, Period::default(), &keys(&p))
            .await
            .unwrap()
            .first_break
            .is_none());
    });
}

/// BB-BIL-001: the usage summary sums exactly what the export returns for the period.
#[test]
fn usage_matches_the_export() {
    block_on(async {
        let p = TestPlatform::new().await;
        let day = 86_400_000;
        p.clock.advance(3 * day);
        let events = json!([
            billing("a", "api.call", 3, START_MS),
            billing("b", "api.call", 4, START_MS + 10),
            billing("c", "storage.gb", 7, START_MS + day),
            billing("d", "api.call", 5, START_MS + 2 * day),
        ]);
        ingest(&p, StreamKind::Billing, &bound("t1"), &events, None)
            .await
            .unwrap();
        flush_all(&p, START_MS).await.unwrap();
        ingest(
            &p,
            StreamKind::Billing,
            &bound("t1"),
            &billing("e", "api.call", 1, START_MS + 20),
            None,
        )
        .await
        .unwrap();
        let s = stream(StreamKind::Billing, "t1");
        let period = Period {
            from: Some(START_MS),
            to: Some(START_MS + 2 * day),
        };
        let rows = usage_by_day(&p, &s, period).await.unwrap();
        let got: Vec<(String, String, i64, i64)> = rows
            .into_iter()
            .map(|r| (r.period, r.event_type, r.quantity, r.events))
            .collect();
        assert_eq!(
            got,
            vec![
                ("2026-01-01".into(), "api.call".into(), 8, 3),
                ("2026-01-02".into(), "storage.gb".into(), 7, 1),
            ]
        );
        let (items, _) = page(&p, &s, 0, period, 100, |_| true).await.unwrap();
        let ids: BTreeSet<String> = items.into_iter().map(|r| r.id).collect();
        assert_eq!(
            ids,
            ["a", "b", "c", "e"].into_iter().map(String::from).collect()
        );
    });
}

/// Tamper evidence: verify passes on an intact stream and names the first broken link of a
/// tampered archive object.
#[test]
fn verify_detects_a_tampered_archive() {
    block_on(async {
        let p = TestPlatform::new().await;
        let events: Vec<Json> = (0..6)
            .map(|i| audit(&format!("a{i}"), "doc.read"))
            .collect();
        ingest(&p, StreamKind::Audit, &bound("t1"), &json!(events), None)
            .await
            .unwrap();
        flush_all(&p, START_MS).await.unwrap();
        ingest(
            &p,
            StreamKind::Audit,
            &bound("t1"),
            &audit("a9", "doc.read"),
            None,
        )
        .await
        .unwrap();
        let s = stream(StreamKind::Audit, "t1");
        let ok = verify(&p, &s, Period::default(), &keys(&p)).await.unwrap();
        assert_eq!(
            (ok.records, ok.archives, ok.anchors, ok.first_break),
            (7, 1, 1, None)
        );

        let key = "audit/t1/2026/01/01/1-6.ndjson.gz";
        let put = |text: String| {
            let blobs = &p.blobs;
            async move {
                blobs
                    .put(key, gzip(text.as_bytes()).unwrap(), "application/gzip")
                    .await
                    .unwrap()
            }
        };
        let stored = p.blobs.get(key).await.unwrap().unwrap();
        let bytes = String::from_utf8(unpack(key, stored).unwrap()).unwrap();
        let tampered = bytes.replacen("doc.read", "doc.edit", 3);
        put(tampered).await;
        let bad = verify(&p, &s, Period::default(), &keys(&p)).await.unwrap();
        let b = bad.first_break.unwrap();
        assert_eq!(
            (b.seq, b.location.as_str(), b.code),
            (1, key, BreakCode::HashMismatch)
        );

        // Dropping a line is caught too (the object no longer holds its indexed range).
        let lines: Vec<&str> = bytes.lines().collect();
        let dropped = format!("{}\n{}\n", lines[0], lines[2..].join("\n"));
        put(dropped).await;
        let b = verify(&p, &s, Period::default(), &keys(&p))
            .await
            .unwrap()
            .first_break
            .unwrap();
        assert!(b.reason.contains("range"), "{b:?}");
        assert_eq!(b.code, BreakCode::RangeMismatch);

        // So is an object that is not gzip at all, and a missing one.
        p.blobs
            .put(key, bytes.clone().into_bytes(), "application/gzip")
            .await
            .unwrap();
        let b = verify(&p, &s, Period::default(), &keys(&p))
            .await
            .unwrap()
            .first_break
            .unwrap();
        assert!(b.reason.contains("gzip"), "{b:?}");
        assert_eq!(b.code, BreakCode::ArchiveUnreadable);
        p.blobs.delete(key).await.unwrap();
        let b = verify(&p, &s, Period::default(), &keys(&p))
            .await
            .unwrap()
            .first_break
            .unwrap();
        assert!(b.reason.contains("missing"), "{b:?}");
    });
}

/// FR-OPS-003: audit archives go after 7 years, billing after 5, by the test clock.
#[test]
fn retention_deletes_archives_past_their_period() {
    block_on(async {
        let p = TestPlatform::new().await;
        ingest_n(&p, "t1", 0, 3).await;
        ingest(&p, StreamKind::Audit, &bound("t1"), &audit("a1", "x"), None)
            .await
            .unwrap();
        flush_all(&p, START_MS).await.unwrap();
        let count = |kind: &'static str| {
            let sql = p.sql.clone();
            async move {
                sql.query(
                    Stmt::new("SELECT COUNT(*) AS n FROM archive_index WHERE kind = ?1").bind(kind),
                )
                .await
                .unwrap()[0]
                    .i64("n")
                    .unwrap()
            }
        };
        // Exactly five years on, the billing archive is not yet older than the cut-off.
        let five = years_before(START_MS, -5);
        assert_eq!(enforce_retention(&p, five).await.unwrap(), 0);
        assert_eq!(enforce_retention(&p, five + 10).await.unwrap(), 1);
        assert_eq!((count("billing").await, count("audit").await), (0, 1));
        assert!(p
            .blobs
            .list("billing/", None, 10)
            .await
            .unwrap()
            .keys
            .is_empty());
        let seven = years_before(START_MS, -7);
        assert_eq!(enforce_retention(&p, seven).await.unwrap(), 0);
        assert_eq!(enforce_retention(&p, seven + 1).await.unwrap(), 1);
        assert_eq!(count("audit").await, 0);
    });
}

/// FR-LOG-003: the outbox is forwarded into the audit streams exactly once.
#[test]
fn the_outbox_is_forwarded_exactly_once() {
    block_on(async {
        let p = TestPlatform::new().await;
        for (id, tenant) in [("o1", Some("t1")), ("o2", None), ("o3", Some("t1"))] {
            p.sql
                .execute(
                    Stmt::new(
                        "INSERT INTO audit_outbox (id, occurred_at, tenant_id, actor_id, actor_type, action, resource, outcome, metadata)
                         VALUES (?1, ?2, ?3, 'op1', 'operator', 'tenant.update', 'tenant:t1', 'success', '{\"k\":1}')",
                    )
                    .bind(id)
                    .bind(START_MS)
                    .bind(tenant),
                )
                .await
                .unwrap();
        }
        p.sql
            .execute(
                Stmt::new(
                    "INSERT INTO tenants (id, name, domain, plan, created_at, updated_at)
                     VALUES ('t1', 'T1', 't1.example', 'free', ?1, ?1)",
                )
                .bind(START_MS),
            )
            .await
            .unwrap();
        assert_eq!(forward_outbox(&p, START_MS).await.unwrap(), 3);
        let tenant = stream(StreamKind::Audit, "t1");
        let platform = stream(StreamKind::Audit, "_platform");
        let ids = |events: Vec<crate::ports::StoredEvent>| {
            events.into_iter().map(|e| e.id).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(p.event_log.read(&tenant, 0, 10).await.unwrap()),
            ["o1", "o3"]
        );
        let stored = p.event_log.read(&platform, 0, 10).await.unwrap();
        assert!(stored[0].body.contains("\"actor_type\":\"operator\""));
        assert_eq!(ids(stored), ["o2"]);
        let left = p
            .sql
            .query(Stmt::new(
                "SELECT COUNT(*) AS n FROM audit_outbox WHERE forwarded_at IS NULL",
            ))
            .await
            .unwrap()[0]
            .i64("n")
            .unwrap();
        assert_eq!(left, 0);
        // Forwarding again (say the marking had failed) appends nothing new.
        p.sql
            .execute(Stmt::new("UPDATE audit_outbox SET forwarded_at = NULL"))
            .await
            .unwrap();
        assert_eq!(forward_outbox(&p, START_MS).await.unwrap(), 3);
        assert_eq!(p.event_log.read(&tenant, 0, 10).await.unwrap().len(), 2);
        assert_eq!(p.event_log.read(&platform, 0, 10).await.unwrap().len(), 1);
        // A purged tenant's later records go to _platform (its own streams are deleted).
        p.sql
            .execute(Stmt::new(
                "UPDATE tenants SET status = 'deleted', domain = NULL",
            ))
            .await
            .unwrap();
        p.sql
            .execute(Stmt::new(
                "UPDATE audit_outbox SET forwarded_at = NULL, id = 'o4' WHERE id = 'o3'",
            ))
            .await
            .unwrap();
        forward_outbox(&p, START_MS).await.unwrap();
        assert_eq!(
            ids(p.event_log.read(&platform, 0, 10).await.unwrap()),
            ["o2", "o4"]
        );
    });
}

/// FR-OPS-002: a purge deletes the tenant's archives, orphans included, and its streams.
#[test]
fn purge_deletes_a_tenants_events() {
    block_on(async {
        let p = TestPlatform::new().await;
        ingest_n(&p, "t1", 0, 3).await;
        ingest_n(&p, "t2", 0, 3).await;
        ingest(&p, StreamKind::Audit, &bound("t1"), &audit("a1", "x"), None)
            .await
            .unwrap();
        flush_all(&p, START_MS).await.unwrap();
        p.blobs
            .put("billing/t1/2026/01/01/9-9.ndjson", b"orphan".to_vec(), "x")
            .await
            .unwrap();
        ingest_n(&p, "t1", 3, 2).await;
        purge_tenant_events(&p, "t1").await.unwrap();
        assert!(p
            .blobs
            .list("billing/t1/", None, 10)
            .await
            .unwrap()
            .keys
            .is_empty());
        assert!(p
            .blobs
            .list("audit/t1/", None, 10)
            .await
            .unwrap()
            .keys
            .is_empty());
        let s = stream(StreamKind::Billing, "t1");
        assert!(all_seqs(&p, &s, 10).await.is_empty());
        assert_eq!(
            all_seqs(&p, &stream(StreamKind::Billing, "t2"), 10).await,
            vec![1, 2, 3]
        );
        let n = p
            .sql
            .query(Stmt::new(
                "SELECT COUNT(*) AS n FROM event_streams WHERE tenant_id = 't1'",
            ))
            .await
            .unwrap()[0]
            .i64("n")
            .unwrap();
        assert_eq!(n, 0);
    });
}

/// Objects are gzipped only when that saves at least a tenth.
#[test]
fn archives_are_compressed_only_when_it_pays() {
    let text = br#"{"seq":1,"id":"a","body":"{}"}"#.repeat(50);
    let (key, bytes, ct) = pack("k.ndjson".into(), text.clone());
    assert_eq!((key.as_str(), ct), ("k.ndjson.gz", "application/gzip"));
    assert!(bytes.len() * 5 < text.len());
    assert_eq!(unpack(&key, bytes).unwrap(), text);
    // Bytes that do not compress (a pseudo-random sequence) stay as they are.
    let mut x: u32 = 1;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect();
    let (key, bytes, ct) = pack("k.ndjson".into(), noise.clone());
    assert_eq!(
        (key.as_str(), ct, bytes),
        ("k.ndjson", "application/x-ndjson", noise)
    );
}

/// An app-wide key reaches a tenant only through its app link: a tenant without the app is
/// 404, a suspended one 403, an active one is written (FR-BILL-002).
#[test]
fn an_app_wide_key_needs_the_tenant_to_use_the_app() {
    block_on(async {
        let p = TestPlatform::new().await;
        for stmt in [
            "INSERT INTO apps (id, name, owner_id, created_at, updated_at) VALUES ('app1', 'App', 'op', 0, 0)",
            "INSERT INTO tenants (id, name, domain, plan, created_at, updated_at) VALUES ('t1', 'T1', 't1.example', 'free', 0, 0)",
            "INSERT INTO tenants (id, name, domain, plan, created_at, updated_at) VALUES ('t2', 'T2', 't2.example', 'free', 0, 0)",
            "INSERT INTO tenant_apps (tenant_id, app_id, created_at, updated_at) VALUES ('t1', 'app1', 0, 0)",
        ] {
            p.sql.execute(Stmt::new(stmt)).await.unwrap();
        }
        let wide = Reporter {
            app_id: "app1".into(),
            tenant_id: None,
        };
        let event = |tenant: &str| json!({"id": "w", "tenant_id": tenant, "type": "x", "quantity": 1, "timestamp": "2026-01-01T00:00:00Z"});
        let ok = ingest(&p, StreamKind::Billing, &wide, &event("t1"), None)
            .await
            .unwrap();
        assert_eq!(ok.accepted, 1);
        let e = ingest(&p, StreamKind::Billing, &wide, &event("t2"), None)
            .await
            .unwrap_err();
        assert_eq!(e, IngestError::UnknownTenant);
        p.sql
            .execute(Stmt::new(
                "UPDATE tenants SET status = 'suspended' WHERE id = 't1'",
            ))
            .await
            .unwrap();
        let e = ingest(&p, StreamKind::Billing, &wide, &event("t1"), None)
            .await
            .unwrap_err();
        assert_eq!(e, IngestError::TenantNotActive);
        // Mixed tenants in one request are refused by index.
        let mixed = json!([event("t1"), event("t2")]);
        let e = ingest(&p, StreamKind::Billing, &wide, &mixed, None)
            .await
            .unwrap_err();
        assert!(matches!(e, IngestError::MixedTenants { index: 1 }));
    });
}

/// Rewrites an audit stream's archived history the way someone with write access to the blob
/// store and the archive index but without any server secret could: changes the body of
/// record `at`, recomputes every later hash with the public chain rule, and stores the objects
/// and their index rows back, consistently.
async fn rewrite_history(p: &TestPlatform, s: &StreamId, at: i64) {
    let rows = p
        .sql
        .query(
            Stmt::new(
                "SELECT key FROM archive_index WHERE kind = ?1 AND tenant_id = ?2 ORDER BY first_seq",
            )
            .bind(s.kind.as_str())
            .bind(&s.tenant),
        )
        .await
        .unwrap();
    let mut prev: Option<String> = None;
    for row in &rows {
        let key = row.text("key").unwrap();
        let bytes = p.blobs.get(&key).await.unwrap().unwrap();
        let mut records = decode(&key, bytes).unwrap();
        for r in &mut records {
            if r.seq == at {
                r.body = r.body.replacen("doc.read", "doc.wipe", 1);
            }
            if let Some(h) = &prev {
                r.prev_hash.clone_from(h);
            }
            if r.seq >= at {
                r.hash = super::chain::hash(&super::chain::Link {
                    stream: &s.to_string(),
                    seq: r.seq,
                    id: &r.id,
                    occurred_at_ms: r.occurred_at,
                    received_at_ms: r.received_at,
                    prev_hash: &r.prev_hash,
                    body: &r.body,
                });
            }
            prev = Some(r.hash.clone());
        }
        let (first, last) = (
            records[0].hash.clone(),
            records[records.len() - 1].hash.clone(),
        );
        let ndjson = encode(&records).unwrap();
        p.blobs
            .put(&key, gzip(&ndjson).unwrap(), "application/gzip")
            .await
            .unwrap();
        p.sql
            .execute(
                Stmt::new(
                    "UPDATE archive_index SET first_hash = ?2, last_hash = ?3 WHERE key = ?1",
                )
                .bind(&key)
                .bind(first)
                .bind(last),
            )
            .await
            .unwrap();
    }
}

/// FR-LOG-001: the chain alone is unkeyed, so a history rewritten
/// and rehashed consistently by someone with storage write access must still be reported, by
/// the anchors the flush signs; so must an anchor stripped from its object.
#[test]
fn verify_reports_a_rewritten_and_rehashed_history() {
    block_on(async {
        let p = TestPlatform::new().await;
        let day = |from: usize| -> Json {
            json!((from..from + 3)
                .map(|i| audit(&format!("a{i}"), "doc.read"))
                .collect::<Vec<_>>())
        };
        ingest(&p, StreamKind::Audit, &bound("t1"), &day(0), None)
            .await
            .unwrap();
        p.clock.advance(86_400_000);
        ingest(&p, StreamKind::Audit, &bound("t1"), &day(3), None)
            .await
            .unwrap();
        flush_all(&p, p.clock.now_ms()).await.unwrap();
        let s = stream(StreamKind::Audit, "t1");
        let intact = verify(&p, &s, Period::default(), &keys(&p)).await.unwrap();
        assert_eq!(
            (intact.records, intact.archives, intact.first_break),
            (6, 2, None)
        );

        rewrite_history(&p, &s, 2).await;
        let (records, _) = page(&p, &s, 0, Period::default(), 10, |_| true)
            .await
            .unwrap();
        assert!(
            records[1].body.contains("doc.wipe"),
            "history was rewritten"
        );
        let b = verify(&p, &s, Period::default(), &keys(&p))
            .await
            .unwrap()
            .first_break
            .expect("a rewritten history is reported");
        assert_eq!(
            (b.seq, b.location.as_str(), b.code),
            (
                1,
                "audit/t1/2026/01/01/1-3.ndjson.gz",
                BreakCode::AnchorMismatch
            ),
            "{b:?}"
        );

        // Dropping the anchors to pass the rewrite off as unanchored history does not help.
        p.sql
            .execute(Stmt::new(
                "UPDATE archive_index SET anchor = NULL, anchor_kid = NULL",
            ))
            .await
            .unwrap();
        let b = verify(&p, &s, Period::default(), &keys(&p))
            .await
            .unwrap()
            .first_break
            .unwrap();
        assert_eq!((b.seq, b.code), (1, BreakCode::AnchorMissing), "{b:?}");
    });
}

/// FR-LOG-001: outside development a flush without an anchor key writes
/// nothing (the tail stays in the durable log, exports still read it) rather than an
/// unanchored archive, and verify cannot pass existing archives off as checked: it reports
/// them as anchor_key_missing.
#[test]
fn a_deployment_without_an_anchor_key_writes_no_unanchored_archive() {
    block_on(async {
        let p = TestPlatform::new().await;
        ingest(
            &p,
            StreamKind::Audit,
            &bound("t1"),
            &audit("a1", "doc.read"),
            None,
        )
        .await
        .unwrap();
        flush_all(&p, START_MS).await.unwrap();
        let rows = p
            .sql
            .query(Stmt::new("SELECT anchor_kid, anchor FROM archive_index"))
            .await
            .unwrap();
        assert_eq!(rows[0].text("anchor_kid").unwrap(), signer(&p).kid());
        assert_eq!(rows[0].text("anchor").unwrap().len(), 64);
        ingest(
            &p,
            StreamKind::Audit,
            &bound("t1"),
            &audit("a2", "doc.read"),
            None,
        )
        .await
        .unwrap();

        p.secrets.set(KEY_SECRET, "");
        let e = flush_all(&p, START_MS).await.unwrap_err();
        assert_eq!(e, ArchiveError::AnchorKey(AnchorKeyProblem::Missing));
        assert_eq!(e.code(), "anchor_key_missing");
        let s = stream(StreamKind::Audit, "t1");
        assert_eq!(
            p.event_log.read(&s, 0, 10).await.unwrap().len(),
            1,
            "tail kept"
        );
        assert_eq!(
            p.blobs.list("audit/", None, 10).await.unwrap().keys.len(),
            1
        );
        assert_eq!(all_seqs(&p, &s, 10).await, vec![1, 2]);
        let b = verify(&p, &s, Period::default(), &keys(&p))
            .await
            .unwrap()
            .first_break
            .unwrap();
        assert_eq!((b.seq, b.code), (1, BreakCode::AnchorKeyMissing), "{b:?}");
        assert!(b.reason.contains("EVENT_ANCHOR_KEY"), "{b:?}");

        // A key too short is refused the same way; a usable one flushes the tail, anchored.
        p.secrets.set(KEY_SECRET, "short");
        assert_eq!(
            flush_all(&p, START_MS).await.unwrap_err().code(),
            "anchor_key_too_short"
        );
        p.secrets.set(KEY_SECRET, crate::testing::TEST_ANCHOR_KEY);
        assert_eq!(flush_all(&p, START_MS).await.unwrap().events, 1);
        let v = verify(&p, &s, Period::default(), &keys(&p)).await.unwrap();
        assert_eq!((v.archives, v.anchors, v.first_break), (2, 2, None));
    });
}

#[test]
fn the_audit_csv_export_pages_across_tenants_exactly_once() {
    use super::export::{audit_csv_page, CsvExportError, CsvRequest};
    block_on(async {
        let p = TestPlatform::new().await;
        for (tenant, actions) in [
            ("t-a", vec!["doc.read", "doc.write", "doc.read"]),
            ("t-b", vec!["doc.read", "doc.write"]),
        ] {
            let events: Vec<Json> = actions
                .iter()
                .enumerate()
                .map(|(i, a)| audit(&format!("{tenant}-{i}"), a))
                .collect();
            ingest(
                &p,
                StreamKind::Audit,
                &bound(tenant),
                &json!({ "events": events }),
                None,
            )
            .await
            .unwrap();
        }
        // Two rows a page, following the cursor: every event once, in tenant order.
        let mut ids = Vec::new();
        let mut cursor = None;
        for _ in 0..10 {
            let req = CsvRequest {
                cursor: cursor.clone(),
                limit: 2,
                ..CsvRequest::default()
            };
            let page = audit_csv_page(&p, &req).await.unwrap();
            let rows: Vec<&str> = page.csv.lines().skip(1).collect();
            assert!(rows.len() <= 2, "{rows:?}");
            ids.extend(
                rows.iter()
                    .map(|r| r.split(',').nth(2).unwrap_or("").to_owned()),
            );
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(ids, ["t-a-0", "t-a-1", "t-a-2", "t-b-0", "t-b-1"]);
        // One action of one tenant.
        let req = CsvRequest {
            tenant: Some("t-a".into()),
            action: Some("doc.read".into()),
            limit: 100,
            ..CsvRequest::default()
        };
        let page = audit_csv_page(&p, &req).await.unwrap();
        assert_eq!(page.csv.lines().count(), 3, "{}", page.csv);
        assert_eq!(page.next, None);
        // A cursor this export did not issue, or one of another tenant, is refused.
        for (tenant, cursor) in [(None, "nonsense"), (Some("t-b"), "t-a:1")] {
            let req = CsvRequest {
                tenant: tenant.map(str::to_owned),
                cursor: Some(cursor.into()),
                limit: 10,
                ..CsvRequest::default()
            };
            assert_eq!(
                audit_csv_page(&p, &req).await,
                Err(CsvExportError::BadCursor)
            );
        }
    });
}
