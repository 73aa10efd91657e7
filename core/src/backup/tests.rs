//! NFR-OPS-004: the dump restores into a fresh database as the same data, parts are sealed,
//! a finished day is never overwritten, old days go.

use futures_executor::block_on;
use std::io::Read as _;

use super::dump::{self, DumpError, Sink, TableSummary, TABLES};
use super::*;
use crate::audit::Actor;
use crate::ports::{Blobs, Sql, Stmt, Value};
use crate::testing::{NativeSql, TestPlatform, START_MS};
use crate::tokens::master_key::MASTER_KEY_SECRET;

const MASTER: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";
const DAY_MS: i64 = 86_400_000;

/// A platform with a master key, a tenant whose owner accepted the invitation, and flags.
async fn seeded() -> TestPlatform {
    use crate::tenants::{self, Email, Plan, ProvisionTenant, TenantDomain, TenantName};
    let p = TestPlatform::new().await;
    p.secrets.set(MASTER_KEY_SECRET, MASTER);
    let out = tenants::provision(
        &p,
        &Actor::operator("op-1"),
        ProvisionTenant {
            name: TenantName::parse("Ärzte O'Brien; \"Praxis\"").unwrap(),
            domain: TenantDomain::parse("obrien").unwrap(),
            plan: Plan::parse("free").unwrap(),
            owner_email: Email::parse("mary.obrien@example.test").unwrap(),
            apps: vec![],
        },
        None,
        "r",
        &crate::http::links_under("https://cp.example.com"),
    )
    .await
    .unwrap()
    .provisioned;
    let token = out.invitation_link.split_once("token=").unwrap().1;
    crate::users::accept_invitation(&p, token, "correct horse battery staple", "r")
        .await
        .unwrap();
    // Values of every storage class, and text that needs quoting.
    p.sql
        .exec_raw(
            "UPDATE users SET display_name = 'Mary ''Mo'' O''Brien -- ; ' || char(10) || 'line two'",
        )
        .unwrap();
    p
}

/// Every part of a manifest, checked against its hash, opened, inflated and joined.
fn restore_sql(p: &TestPlatform, m: &Manifest) -> String {
    let key = MasterKey::load(&p.secrets).ok();
    let mut sql = String::new();
    for part in &m.parts {
        let stored = block_on(p.blobs.get(&part.key)).unwrap().unwrap();
        assert_eq!(
            crate::crypto::sha256_hex(&stored),
            part.sha256,
            "{}",
            part.key
        );
        let gz = if m.sealed {
            key.as_ref()
                .unwrap()
                .open_bytes(&part.key, &stored)
                .unwrap()
        } else {
            stored
        };
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_string(&mut sql)
            .unwrap();
    }
    sql
}

/// A sink keeping the text.
#[derive(Default)]
struct Collect(String);

impl Sink for Collect {
    async fn chunk(&mut self, sql: String) -> Result<(), DumpError> {
        self.0.push_str(&sql);
        Ok(())
    }
}

fn summaries(sql: &NativeSql) -> (Vec<TableSummary>, String) {
    let mut sink = Collect::default();
    let d = block_on(dump::dump(sql, &mut sink, 1 << 20)).unwrap();
    assert!(d.unlisted.is_empty(), "unlisted tables {:?}", d.unlisted);
    (d.tables, sink.0)
}

fn schema_of(sql: &NativeSql) -> Vec<(String, String)> {
    block_on(sql.query(Stmt::new(
        "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name",
    )))
    .unwrap()
    .iter()
    .map(|r| (r.text("name").unwrap(), r.text("sql").unwrap()))
    .collect()
}

/// NFR-OPS-004: a backup of a migrated, seeded database, restored into an empty one, gives the
/// same schema and, table by table, the same rows (counts and content hashes), with
/// `AUTOINCREMENT` counters carried over; and parts small enough force several parts.
#[test]
fn nfr_ops_004_backup_restores_into_a_fresh_database_as_the_same_data() {
    let p = block_on(seeded());
    let (before, _) = summaries(&p.sql);
    let m = block_on(write(&p, "2026-01-01", START_MS)).unwrap();
    assert!(m.sealed);
    assert_eq!(
        m.key_id,
        Some(MasterKey::load(&p.secrets).unwrap().key_id())
    );
    assert!(m.unlisted_tables.is_empty());
    let listed: Vec<ManifestTable> = before.iter().cloned().map(ManifestTable::from).collect();
    assert_eq!(m.tables, listed);
    let users = m.tables.iter().find(|t| t.name == "users").unwrap();
    assert_eq!(users.rows, 1);

    let text = restore_sql(&p, &m);
    assert!(text.starts_with(dump::HEADER));
    assert!(!text.contains("mary.obrien@example.test") || !m.parts.is_empty());
    let fresh = NativeSql::memory();
    fresh.exec_raw(&format!("BEGIN;\n{text}COMMIT;")).unwrap();

    let (after, _) = summaries(&fresh);
    assert_eq!(after, before);
    assert_eq!(schema_of(&fresh), schema_of(&p.sql));
    let seq = "SELECT name, seq FROM sqlite_sequence ORDER BY name";
    let seqs = |s: &NativeSql| -> Vec<(String, i64)> {
        block_on(s.query(Stmt::new(seq)))
            .unwrap()
            .iter()
            .map(|r| (r.text("name").unwrap(), r.i64("seq").unwrap()))
            .collect()
    };
    assert_eq!(seqs(&fresh), seqs(&p.sql));
    assert!(!seqs(&fresh).is_empty());
    let violations = block_on(fresh.query(Stmt::new("SELECT * FROM pragma_foreign_key_check")));
    assert_eq!(violations.unwrap().len(), 0);
}

/// The stored parts are ciphertext: no email, no name in them; a part moved to another key
/// does not open.
#[test]
fn nfr_ops_004_parts_are_sealed_under_the_master_key() {
    let p = block_on(seeded());
    let m = block_on(write(&p, "2026-01-01", START_MS)).unwrap();
    let key = MasterKey::load(&p.secrets).unwrap();
    for part in &m.parts {
        assert!(part.key.ends_with(".sql.gz.enc"));
        let stored = block_on(p.blobs.get(&part.key)).unwrap().unwrap();
        let gz = key.open_bytes(&part.key, &stored).unwrap();
        assert!(key
            .open_bytes("backups/d1/2026-01-02/part-00001.sql.gz.enc", &stored)
            .is_err());
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_string(&mut text)
            .unwrap();
        assert!(text.contains("INSERT INTO \"users\""));
    }
    assert!(restore_sql(&p, &m).contains("mary.obrien@example.test"));
}

/// Outside development nothing is written without a master key; in development the backup is
/// plain gzip.
#[test]
fn nfr_ops_004_no_backup_is_written_unsealed_outside_development() {
    let p = block_on(seeded());
    p.secrets.set(MASTER_KEY_SECRET, "");
    let err = block_on(write(&p, "2026-01-01", START_MS)).unwrap_err();
    assert_eq!(err, BackupError::Key(MasterKeyError::Missing));
    assert!(block_on(p.blobs.list(PREFIX, None, 10))
        .unwrap()
        .keys
        .is_empty());

    p.secrets.set("EDGEPLANE_ENV", "development");
    let m = block_on(write(&p, "2026-01-01", START_MS)).unwrap();
    assert!(!m.sealed && m.key_id.is_none());
    assert!(m.parts.iter().all(|part| part.key.ends_with(".sql.gz")));
    assert!(restore_sql(&p, &m).contains("mary.obrien@example.test"));
}

/// A large database is cut into parts of whole statements that restore in order.
#[test]
fn nfr_ops_004_a_large_dump_is_cut_into_parts_of_whole_statements() {
    struct Parts(Vec<String>);
    impl Sink for Parts {
        async fn chunk(&mut self, sql: String) -> Result<(), DumpError> {
            self.0.push(sql);
            Ok(())
        }
    }
    let p = block_on(seeded());
    let mut parts = Parts(Vec::new());
    let d = block_on(dump::dump(&p.sql, &mut parts, 2_000)).unwrap();
    assert!(parts.0.len() > 3, "{} parts", parts.0.len());
    assert!(parts.0.iter().all(|s| s.ends_with(";\n")));
    let fresh = NativeSql::memory();
    let joined: String = parts.0.concat();
    assert_eq!(joined.len() as u64, d.sql_bytes);
    fresh.exec_raw(&format!("BEGIN;\n{joined}COMMIT;")).unwrap();
    assert_eq!(summaries(&fresh).0, d.tables);
}

/// The dump reads every table the migrations create (and the event log's and wrangler's, which
/// may share the database): a new table needs a line in [`TABLES`], or it would be left out.
#[test]
fn every_table_of_the_migrations_is_dumped() {
    let p = block_on(TestPlatform::new());
    let log = NativeSql::memory();
    for stmt in crate::events::SCHEMA {
        log.exec_raw(stmt).unwrap();
    }
    for sql in [&p.sql, &log] {
        let names: Vec<String> = block_on(sql.query(Stmt::new(
            "SELECT name FROM sqlite_master WHERE type = 'table'",
        )))
        .unwrap()
        .iter()
        .map(|r| r.text("name").unwrap())
        .collect();
        for name in names {
            assert!(
                dump::excluded(&name) || TABLES.iter().any(|t| t.name == name),
                "table {name} is missing from backup::dump::TABLES"
            );
        }
    }
    assert!(dump::excluded(crate::blobs::TABLE));
}

/// Literals read back as the same value and storage class (reals of ordinary magnitude: SQLite's
/// own text-to-double conversion can land one unit off near the subnormal range, and no column
/// of the schema is REAL).
#[test]
fn literals_read_back_as_the_same_values() {
    let sql = NativeSql::memory();
    let values = [
        Value::Null,
        Value::Integer(i64::MIN),
        Value::Integer(0),
        Value::Real(0.1),
        Value::Real(-2.5e-10),
        Value::Real(123_456.789_012_345_6),
        Value::Real(1e300),
        Value::Real(3.0),
        Value::Text(String::new()),
        Value::Text("it's -- /* ; */ \"x\"\n\r\tü€😀".into()),
        Value::Text("nul\0inside".into()),
        Value::Blob(vec![0, 1, 0xff]),
        Value::Blob(Vec::new()),
    ];
    sql.exec_raw("CREATE TABLE t (v)").unwrap();
    for v in &values {
        sql.exec_raw("DELETE FROM t").unwrap();
        sql.exec_raw(&format!("INSERT INTO t (v) VALUES ({});", dump::literal(v)))
            .unwrap();
        let rows = block_on(sql.query(Stmt::new("SELECT v FROM t"))).unwrap();
        assert_eq!(rows[0].get("v"), Some(v), "{}", dump::literal(v));
    }
}

/// A finished day is never written again; a later day gets its own backup.
#[test]
fn nfr_ops_004_a_finished_day_is_not_overwritten() {
    let p = block_on(seeded());
    let first = block_on(daily(&p, START_MS)).unwrap().unwrap();
    let manifest = block_on(p.blobs.get(&manifest_key("2026-01-01"))).unwrap();
    p.clock.advance(3_600_000);
    assert_eq!(block_on(daily(&p, p.clock.now_ms())).unwrap(), None);
    assert_eq!(
        block_on(p.blobs.get(&manifest_key("2026-01-01"))).unwrap(),
        manifest
    );
    p.clock.advance(DAY_MS);
    let second = block_on(daily(&p, p.clock.now_ms())).unwrap().unwrap();
    assert_eq!(second.date, "2026-01-02");
    assert_eq!(first.date, "2026-01-01");
}

/// Backups older than [`KEEP_DAYS`] are deleted, only once today's is finished, and nothing
/// else under the prefix is touched.
#[test]
fn nfr_ops_004_backups_past_retention_are_deleted() {
    let p = block_on(seeded());
    for (key, bytes) in [
        ("backups/d1/2025-11-01/part-00001.sql.gz.enc", b"x".to_vec()),
        ("backups/d1/2025-11-01/manifest.json", b"{}".to_vec()),
        ("backups/d1/2025-11-28/manifest.json", b"{}".to_vec()),
        ("backups/d1/notes.txt", b"keep".to_vec()),
    ] {
        block_on(p.blobs.put(key, bytes, "application/octet-stream")).unwrap();
    }
    assert_eq!(
        block_on(expire(&p, START_MS)).unwrap(),
        0,
        "today unfinished"
    );
    block_on(daily(&p, START_MS)).unwrap();
    assert_eq!(block_on(expire(&p, START_MS)).unwrap(), 2);
    let left = block_on(p.blobs.list(PREFIX, None, 100)).unwrap().keys;
    assert!(left.contains(&"backups/d1/2025-11-28/manifest.json".to_owned()));
    assert!(left.contains(&"backups/d1/notes.txt".to_owned()));
    assert!(!left.iter().any(|k| k.starts_with("backups/d1/2025-11-01/")));
}

/// The daily cron takes the backup; other runs only from the catch-up hour on.
#[test]
fn nfr_ops_004_the_scheduled_run_takes_the_daily_backup() {
    assert!(due(DAILY_CRON, START_MS));
    assert!(!due("*/5 * * * *", START_MS));
    assert!(due("*/5 * * * *", START_MS + 5 * 3_600_000));
    let p = block_on(seeded());
    let (report, causes) = block_on(crate::scheduled::run(&p, DAILY_CRON));
    assert!(causes.is_empty(), "{causes:?}");
    let job = report
        .jobs
        .iter()
        .find(|j| j.name == "backup.write")
        .unwrap();
    assert!(job.affected >= 1);
    let (report, _) = block_on(crate::scheduled::run(&p, DAILY_CRON));
    let job = report
        .jobs
        .iter()
        .find(|j| j.name == "backup.write")
        .unwrap();
    assert_eq!(job.affected, 0);
}
