//! The event log over SQL: the events of each stream keyed by sequence number, chained by
//! hash, plus the ids a retry is checked against and each stream's head.

use std::collections::HashSet;

use super::chain::{self, Link, GENESIS};
use crate::ports::{
    AppendOutcome, Clock, EventLog, EventLogError, NewEvent, Row, Sql, SqlError, Stmt, StoredEvent,
    StreamId,
};

/// How long an accepted event id is remembered after its event was archived: a retry later
/// than this would be stored again (FR-BILL-002 retries come within minutes).
pub const DEDUPE_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;

/// The event log schema, applied by [`SqlEventLog::migrate`]. It lives beside the log rather
/// than in `d1-migrations/` because on Workers it is the Durable Object's own storage, not D1.
///
/// `stream` is [`StreamId`]'s display form (`billing/<tenant>`); `seq` counts from 1 without gaps
/// within a stream. `stream_events` holds the unarchived tail; `stream_event_ids` every id
/// accepted (pruned [`DEDUPE_WINDOW_MS`] after archiving), so deduplication outlives the tail;
/// `stream_heads` the last sequence number and hash, so the chain continues after a flush.
pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS stream_events (
  stream TEXT NOT NULL,
  seq INTEGER NOT NULL,
  event_id TEXT NOT NULL,
  occurred_at INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  body TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (stream, seq)
)",
    "CREATE TABLE IF NOT EXISTS stream_event_ids (
  stream TEXT NOT NULL,
  event_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (stream, event_id)
)",
    // Pruning ids past the dedupe window reads only the old ones, not the whole table.
    "CREATE INDEX IF NOT EXISTS stream_event_ids_age ON stream_event_ids (stream, received_at)",
    "CREATE TABLE IF NOT EXISTS stream_heads (
  stream TEXT PRIMARY KEY NOT NULL,
  last_seq INTEGER NOT NULL,
  last_hash TEXT NOT NULL
)",
];

const HEAD: &str = "SELECT last_seq, last_hash FROM stream_heads WHERE stream = ?1";

/// Which of the given ids (a JSON array, one parameter whatever the batch size) the stream
/// already holds.
const KNOWN_IDS: &str = "SELECT event_id FROM stream_event_ids
WHERE stream = ?1 AND event_id IN (SELECT value FROM json_each(?2))";

/// Inserts a batch of records given as one JSON array parameter (`?2`) of
/// `{seq, id, occurred_at, prev_hash, hash, body}`: one statement whatever the batch size
/// (D1 and Durable Objects bind at most 100 parameters per statement).
const INSERT_EVENTS: &str = "INSERT INTO stream_events
(stream, seq, event_id, occurred_at, received_at, body, prev_hash, hash)
SELECT ?1, json_extract(value, '$.seq'), json_extract(value, '$.id'),
 json_extract(value, '$.occurred_at'), ?3, json_extract(value, '$.body'),
 json_extract(value, '$.prev_hash'), json_extract(value, '$.hash')
FROM json_each(?2)";

/// The ids of the same batch. A concurrent append of the same id (a race the read above lost)
/// fails the whole batch on this primary key; the client's retry then sees a duplicate.
const INSERT_IDS: &str = "INSERT INTO stream_event_ids (stream, event_id, seq, received_at)
SELECT ?1, json_extract(value, '$.id'), json_extract(value, '$.seq'), ?3 FROM json_each(?2)";

/// One record of an append batch, as [`INSERT_EVENTS`] reads it.
#[derive(serde::Serialize)]
struct BatchRecord<'a> {
    seq: i64,
    id: &'a str,
    occurred_at: i64,
    prev_hash: &'a str,
    hash: &'a str,
    body: &'a str,
}

/// Moves the head. Two appends racing from the same head collide on `stream_events`' primary
/// key (the same `seq`), so one of them rolls back.
const SET_HEAD: &str = "INSERT INTO stream_heads (stream, last_seq, last_hash) VALUES (?1, ?2, ?3)
ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq, last_hash = excluded.last_hash";

/// Forgets archived ids past the dedupe window (`?3` is the cut-off).
const PRUNE_IDS: &str =
    "DELETE FROM stream_event_ids WHERE stream = ?1 AND received_at < ?3 AND seq <= ?2";

const READ: &str = "SELECT seq, event_id, occurred_at, received_at, body, prev_hash, hash
FROM stream_events WHERE stream = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";

/// [`EventLog`] over any [`Sql`]: appends are one atomic batch, deduplicated by event id and
/// hash-chained ([`chain`]).
#[derive(Debug, Clone)]
pub struct SqlEventLog<S, C> {
    sql: S,
    clock: C,
}

impl<S: Sql, C: Clock> SqlEventLog<S, C> {
    /// A log over `sql`, stamping `received_at` from `clock`. Call [`SqlEventLog::migrate`] once
    /// before use.
    pub fn new(sql: S, clock: C) -> Self {
        SqlEventLog { sql, clock }
    }

    /// Creates the log's tables if they do not exist yet.
    pub async fn migrate(&self) -> Result<(), EventLogError> {
        let stmts = SCHEMA.iter().copied().map(Stmt::new).collect();
        self.sql.batch(stmts).await.map(drop).map_err(log_error)
    }

    /// The streams holding unarchived events (what a Durable Object's alarm flushes).
    pub async fn pending_streams(&self) -> Result<Vec<StreamId>, EventLogError> {
        let rows = self
            .sql
            .query(Stmt::new("SELECT DISTINCT stream FROM stream_events"))
            .await
            .map_err(log_error)?;
        rows.iter()
            .map(|r| {
                let s = r.text("stream").map_err(log_error)?;
                StreamId::parse(&s)
                    .ok_or_else(|| EventLogError::Other(format!("bad stream name {s:?}")))
            })
            .collect()
    }

    /// The stream's last sequence number and hash (0 and [`GENESIS`] for a new stream).
    async fn head(&self, stream: &str) -> Result<(i64, String), EventLogError> {
        let rows = self
            .sql
            .query(Stmt::new(HEAD).bind(stream))
            .await
            .map_err(log_error)?;
        match rows.first() {
            Some(r) => Ok((
                r.i64("last_seq").map_err(log_error)?,
                r.text("last_hash").map_err(log_error)?,
            )),
            None => Ok((0, GENESIS.to_owned())),
        }
    }
}

impl<S: Sql, C: Clock> EventLog for SqlEventLog<S, C> {
    async fn append(
        &self,
        stream: &StreamId,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventLogError> {
        if events.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let stream = stream.to_string();
        let received_at = self.clock.now_ms();
        let ids = serde_json::to_string(&events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>())
            .map_err(|e| EventLogError::Other(e.to_string()))?;
        let known = self
            .sql
            .query(Stmt::new(KNOWN_IDS).bind(&stream).bind(ids))
            .await
            .map_err(log_error)?;
        let mut seen = known
            .iter()
            .map(|r| r.text("event_id"))
            .collect::<Result<HashSet<_>, _>>()
            .map_err(log_error)?;
        let (mut seq, mut prev) = self.head(&stream).await?;
        let total = events.len();
        let mut fresh = Vec::new();
        for e in &events {
            if !seen.insert(e.id.clone()) {
                continue;
            }
            seq += 1;
            let hash = chain::hash(&Link {
                stream: &stream,
                seq,
                id: &e.id,
                occurred_at_ms: e.occurred_at_ms,
                received_at_ms: received_at,
                prev_hash: &prev,
                body: &e.body,
            });
            fresh.push((seq, e, prev, hash.clone()));
            prev = hash;
        }
        let appended = fresh.len();
        if appended > 0 {
            let records: Vec<BatchRecord<'_>> = fresh
                .iter()
                .map(|(seq, e, prev_hash, hash)| BatchRecord {
                    seq: *seq,
                    id: &e.id,
                    occurred_at: e.occurred_at_ms,
                    prev_hash,
                    hash,
                    body: &e.body,
                })
                .collect();
            let json =
                serde_json::to_string(&records).map_err(|e| EventLogError::Other(e.to_string()))?;
            let stmts = vec![
                Stmt::new(INSERT_IDS)
                    .bind(&stream)
                    .bind(json.clone())
                    .bind(received_at),
                Stmt::new(INSERT_EVENTS)
                    .bind(&stream)
                    .bind(json)
                    .bind(received_at),
                Stmt::new(SET_HEAD).bind(&stream).bind(seq).bind(prev),
            ];
            self.sql.batch(stmts).await.map_err(log_error)?;
        }
        Ok(AppendOutcome {
            appended: saturate(appended),
            duplicates: saturate(total - appended),
        })
    }

    async fn read(
        &self,
        stream: &StreamId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, EventLogError> {
        let rows = self
            .sql
            .query(
                Stmt::new(READ)
                    .bind(stream.to_string())
                    .bind(after_seq)
                    .bind(i64::from(limit)),
            )
            .await
            .map_err(log_error)?;
        rows.iter()
            .map(stored_event)
            .collect::<Result<_, _>>()
            .map_err(log_error)
    }

    async fn truncate(&self, stream: &StreamId, through_seq: i64) -> Result<u64, EventLogError> {
        let stream = stream.to_string();
        let cutoff = self.clock.now_ms().saturating_sub(DEDUPE_WINDOW_MS);
        let changed = self
            .sql
            .batch(vec![
                Stmt::new("DELETE FROM stream_events WHERE stream = ?1 AND seq <= ?2")
                    .bind(&stream)
                    .bind(through_seq),
                Stmt::new(PRUNE_IDS)
                    .bind(&stream)
                    .bind(through_seq)
                    .bind(cutoff),
            ])
            .await
            .map_err(log_error)?;
        Ok(changed.first().copied().unwrap_or(0))
    }

    async fn drop_stream(&self, stream: &StreamId) -> Result<(), EventLogError> {
        let stream = stream.to_string();
        self.sql
            .batch(vec![
                Stmt::new("DELETE FROM stream_events WHERE stream = ?1").bind(&stream),
                Stmt::new("DELETE FROM stream_event_ids WHERE stream = ?1").bind(&stream),
                Stmt::new("DELETE FROM stream_heads WHERE stream = ?1").bind(&stream),
            ])
            .await
            .map(drop)
            .map_err(log_error)
    }

    async fn ping(&self) -> Result<(), EventLogError> {
        self.sql
            .query(Stmt::new("SELECT 1"))
            .await
            .map(drop)
            .map_err(log_error)
    }
}

/// A stored row as an event.
fn stored_event(row: &Row) -> Result<StoredEvent, SqlError> {
    Ok(StoredEvent {
        seq: row.i64("seq")?,
        id: row.text("event_id")?,
        occurred_at_ms: row.i64("occurred_at")?,
        received_at_ms: row.i64("received_at")?,
        body: row.text("body")?,
        prev_hash: row.text("prev_hash")?,
        hash: row.text("hash")?,
    })
}

/// A count as `u32` (a batch never holds 2^32 events).
fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A storage failure as an event-log failure: an unreachable database, or a race lost to a
/// concurrent append (constraint), is retryable.
fn log_error(e: SqlError) -> EventLogError {
    match e {
        SqlError::Unavailable(m) | SqlError::Constraint(m) => EventLogError::Unavailable(m),
        other => EventLogError::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;
    use crate::ports::StreamKind;
    use crate::testing::{FixedClock, NativeSql, START_MS};

    async fn log() -> (SqlEventLog<NativeSql, FixedClock>, NativeSql, FixedClock) {
        let sql = NativeSql::memory();
        let clock = FixedClock::default();
        let log = SqlEventLog::new(sql.clone(), clock.clone());
        log.migrate().await.unwrap();
        (log, sql, clock)
    }

    fn stream(kind: StreamKind, tenant: &str) -> StreamId {
        StreamId {
            kind,
            tenant: tenant.to_owned(),
        }
    }

    fn event(id: &str) -> NewEvent {
        NewEvent {
            id: id.to_owned(),
            occurred_at_ms: START_MS - 1000,
            body: format!("{{\"id\":\"{id}\"}}"),
        }
    }

    fn events(ids: &[&str]) -> Vec<NewEvent> {
        ids.iter().map(|id| event(id)).collect()
    }

    async fn ids(log: &SqlEventLog<NativeSql, FixedClock>, s: &StreamId) -> Vec<(i64, String)> {
        log.read(s, 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e.id))
            .collect()
    }

    fn seqs(pairs: &[(i64, &str)]) -> Vec<(i64, String)> {
        pairs.iter().map(|(s, id)| (*s, (*id).to_owned())).collect()
    }

    /// FR-BILL-001: appended events are stored in order, with what the client sent.
    #[test]
    fn append_stores_events_in_order() {
        block_on(async {
            let (log, _, clock) = log().await;
            let s = stream(StreamKind::Billing, "t1");
            let out = log.append(&s, events(&["a", "b", "c"])).await.unwrap();
            assert_eq!(
                out,
                AppendOutcome {
                    appended: 3,
                    duplicates: 0
                }
            );
            clock.advance(10);
            log.append(&s, events(&["d"])).await.unwrap();

            let stored = log.read(&s, 0, 10).await.unwrap();
            assert_eq!(stored.len(), 4);
            assert_eq!(
                stored[0],
                StoredEvent {
                    seq: 1,
                    id: "a".into(),
                    occurred_at_ms: START_MS - 1000,
                    received_at_ms: START_MS,
                    body: "{\"id\":\"a\"}".into(),
                    prev_hash: GENESIS.into(),
                    hash: stored[0].hash.clone(),
                }
            );
            // FR-LOG-001 tamper evidence: each record links to the one before.
            for pair in stored.windows(2) {
                assert_eq!(pair[1].prev_hash, pair[0].hash);
            }
            assert_eq!(stored[3].seq, 4);
            assert_eq!(stored[3].received_at_ms, START_MS + 10);
        });
    }

    /// A retried batch (same ids) is applied once.
    #[test]
    fn a_retried_batch_applies_once() {
        block_on(async {
            let (log, _, _) = log().await;
            let s = stream(StreamKind::Audit, "t1");
            log.append(&s, events(&["a", "b"])).await.unwrap();
            let again = log.append(&s, events(&["a", "b"])).await.unwrap();
            assert_eq!(
                again,
                AppendOutcome {
                    appended: 0,
                    duplicates: 2
                }
            );
            assert_eq!(ids(&log, &s).await, seqs(&[(1, "a"), (2, "b")]));
        });
    }

    /// New events after duplicates get the next sequence numbers: no gaps.
    #[test]
    fn duplicates_take_no_sequence_numbers() {
        block_on(async {
            let (log, _, _) = log().await;
            let s = stream(StreamKind::Billing, "t1");
            log.append(&s, events(&["a", "b"])).await.unwrap();
            let out = log
                .append(&s, events(&["b", "c", "a", "c", "d"]))
                .await
                .unwrap();
            assert_eq!(
                out,
                AppendOutcome {
                    appended: 2,
                    duplicates: 3
                }
            );
            assert_eq!(
                ids(&log, &s).await,
                seqs(&[(1, "a"), (2, "b"), (3, "c"), (4, "d")])
            );
        });
    }

    #[test]
    fn a_duplicate_within_one_batch_counts_once() {
        block_on(async {
            let (log, _, _) = log().await;
            let s = stream(StreamKind::Billing, "t1");
            let out = log.append(&s, events(&["x", "x"])).await.unwrap();
            assert_eq!(
                out,
                AppendOutcome {
                    appended: 1,
                    duplicates: 1
                }
            );
        });
    }

    /// Streams number and deduplicate independently.
    #[test]
    fn streams_are_independent() {
        block_on(async {
            let (log, _, _) = log().await;
            let (billing, audit, other) = (
                stream(StreamKind::Billing, "t1"),
                stream(StreamKind::Audit, "t1"),
                stream(StreamKind::Billing, "t2"),
            );
            for s in [&billing, &audit, &other] {
                assert_eq!(log.append(s, events(&["same"])).await.unwrap().appended, 1);
            }
            log.append(&billing, events(&["next"])).await.unwrap();
            assert_eq!(ids(&log, &billing).await, seqs(&[(1, "same"), (2, "next")]));
            assert_eq!(ids(&log, &audit).await, seqs(&[(1, "same")]));
            assert_eq!(ids(&log, &other).await, seqs(&[(1, "same")]));
        });
    }

    #[test]
    fn read_pages_by_sequence_number() {
        block_on(async {
            let (log, _, _) = log().await;
            let s = stream(StreamKind::Audit, "_platform");
            log.append(&s, events(&["1", "2", "3", "4", "5"]))
                .await
                .unwrap();
            let mut after = 0;
            let mut pages = Vec::new();
            loop {
                let page = log.read(&s, after, 2).await.unwrap();
                let Some(last) = page.last() else { break };
                after = last.seq;
                pages.push(page.iter().map(|e| e.seq).collect::<Vec<_>>());
            }
            assert_eq!(pages, vec![vec![1, 2], vec![3, 4], vec![5]]);
            assert!(log.read(&s, 0, 0).await.unwrap().is_empty());
            assert!(log
                .read(&stream(StreamKind::Audit, "nobody"), 0, 10)
                .await
                .unwrap()
                .is_empty());
        });
    }

    /// An append that fails part-way stores none of its events.
    #[test]
    fn a_failing_append_stores_nothing() {
        block_on(async {
            let (log, sql, _) = log().await;
            // A test-only trigger makes one event fail inside the batch.
            sql.exec_raw(
                "CREATE TRIGGER poison BEFORE INSERT ON stream_events WHEN NEW.event_id = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
            )
            .unwrap();
            let s = stream(StreamKind::Billing, "t1");
            let err = log
                .append(&s, events(&["a", "b", "poison", "c"]))
                .await
                .unwrap_err();
            assert!(
                matches!(err, EventLogError::Other(_) | EventLogError::Unavailable(_)),
                "{err:?}"
            );
            assert!(ids(&log, &s).await.is_empty());
            // The retry without the bad event starts at 1.
            log.append(&s, events(&["a", "b"])).await.unwrap();
            assert_eq!(ids(&log, &s).await, seqs(&[(1, "a"), (2, "b")]));
        });
    }

    #[test]
    fn empty_append_ping_and_repeated_migrate() {
        block_on(async {
            let (log, _, _) = log().await;
            let s = stream(StreamKind::Billing, "t1");
            assert_eq!(
                log.append(&s, Vec::new()).await.unwrap(),
                AppendOutcome::default()
            );
            log.ping().await.unwrap();
            log.migrate().await.unwrap();
        });
    }

    /// FR-BILL-001: archived rows leave the tail, but the chain and deduplication go on.
    #[test]
    fn truncate_keeps_the_head_and_the_ids() {
        block_on(async {
            let (log, _, clock) = log().await;
            let s = stream(StreamKind::Billing, "t1");
            log.append(&s, events(&["a", "b", "c"])).await.unwrap();
            let before = log.read(&s, 0, 10).await.unwrap();
            assert_eq!(log.truncate(&s, 2).await.unwrap(), 2);
            assert_eq!(ids(&log, &s).await, seqs(&[(3, "c")]));
            let again = log.append(&s, events(&["a", "d"])).await.unwrap();
            assert_eq!((again.appended, again.duplicates), (1, 1));
            let tail = log.read(&s, 0, 10).await.unwrap();
            assert_eq!(tail[1].seq, 4);
            assert_eq!(tail[1].prev_hash, before[2].hash);
            // Past the dedupe window the archived ids are forgotten; the unarchived one is not.
            clock.advance(DEDUPE_WINDOW_MS + 1);
            log.truncate(&s, 3).await.unwrap();
            let late = log.append(&s, events(&["a", "d"])).await.unwrap();
            assert_eq!((late.appended, late.duplicates), (1, 1));
        });
    }

    #[test]
    fn pending_streams_are_those_with_a_tail() {
        block_on(async {
            let (log, _, _) = log().await;
            let (a, b) = (
                stream(StreamKind::Billing, "t1"),
                stream(StreamKind::Audit, "_platform"),
            );
            log.append(&a, events(&["x"])).await.unwrap();
            log.append(&b, events(&["y"])).await.unwrap();
            let mut pending = log.pending_streams().await.unwrap();
            pending.sort();
            assert_eq!(pending, vec![a.clone(), b.clone()]);
            log.truncate(&a, 1).await.unwrap();
            assert_eq!(log.pending_streams().await.unwrap(), vec![b]);
        });
    }

    /// A flush prunes ids through the age index, not by scanning every id of the stream.
    #[test]
    fn pruning_ids_reads_only_old_ones() {
        block_on(async {
            let (_, sql, _) = log().await;
            let plan = sql
                .explain(Stmt::new(PRUNE_IDS).bind("s").bind(1).bind(2))
                .unwrap();
            assert!(plan.contains("stream_event_ids_age"), "{plan}");
        });
    }

    /// FR-OPS-002: a dropped stream starts again from 1.
    #[test]
    fn drop_stream_forgets_everything() {
        block_on(async {
            let (log, _, _) = log().await;
            let s = stream(StreamKind::Audit, "t1");
            let other = stream(StreamKind::Audit, "t2");
            log.append(&s, events(&["a", "b"])).await.unwrap();
            log.append(&other, events(&["a"])).await.unwrap();
            log.drop_stream(&s).await.unwrap();
            assert!(ids(&log, &s).await.is_empty());
            log.append(&s, events(&["a"])).await.unwrap();
            let fresh = log.read(&s, 0, 10).await.unwrap();
            assert_eq!((fresh[0].seq, fresh[0].prev_hash.as_str()), (1, GENESIS));
            assert_eq!(ids(&log, &other).await, seqs(&[(1, "a")]));
        });
    }
}
