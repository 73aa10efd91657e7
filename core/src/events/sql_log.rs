//! The event log over SQL: one table of events keyed by stream and sequence number.

use crate::ports::{
    AppendOutcome, Clock, EventLog, EventLogError, NewEvent, Row, Sql, SqlError, Stmt, StoredEvent,
    StreamId,
};

/// The event log schema, applied by [`SqlEventLog::migrate`]. It lives beside the log rather
/// than in `d1-migrations/` because on Workers it is the Durable Object's own storage, not D1.
///
/// `stream` is [`StreamId`]'s display form (`billing/<tenant>`); `seq` counts from 1 without gaps
/// within a stream; `event_id` is the client's id, unique within its stream.
pub const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS event_log (
  stream TEXT NOT NULL,
  seq INTEGER NOT NULL,
  event_id TEXT NOT NULL,
  occurred_at INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (stream, seq),
  UNIQUE (stream, event_id)
)"];

/// Inserts one event after the last of its stream, unless the stream already holds its id.
///
/// Within one batch the statements run in order in one transaction, so each sees the events
/// the previous ones inserted: sequence numbers stay consecutive and a repeated id inside the
/// batch is skipped like one stored earlier. `ON CONFLICT` names only the id constraint, so any
/// other failure still aborts the batch. (The `WHERE` clause also keeps SQLite from reading
/// `ON` as a join constraint.)
const APPEND: &str = "INSERT INTO event_log (stream, seq, event_id, occurred_at, received_at, body)
SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5 FROM event_log WHERE stream = ?1
ON CONFLICT (stream, event_id) DO NOTHING";

/// Reads a page of a stream in order.
const READ: &str = "SELECT seq, event_id, occurred_at, received_at, body FROM event_log
WHERE stream = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";

/// [`EventLog`] over any [`Sql`]: appends are one atomic batch, deduplicated by event id.
///
/// Hash chains (each event's hash over its predecessor's, for `/v1/audit/verify`) and the
/// flush of sealed ranges to archive objects (recorded in `archive_index`) will extend this
/// type: both read and write the same rows, in the same batches.
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
        let stmts = events
            .into_iter()
            .map(|e| {
                Stmt::new(APPEND)
                    .bind(&stream)
                    .bind(e.id)
                    .bind(e.occurred_at_ms)
                    .bind(received_at)
                    .bind(e.body)
            })
            .collect();
        let changed = self.sql.batch(stmts).await.map_err(log_error)?;
        let appended = changed.iter().filter(|&&n| n > 0).count();
        Ok(AppendOutcome {
            appended: saturate(appended),
            duplicates: saturate(changed.len() - appended),
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
    })
}

/// A count as `u32` (a batch never holds 2^32 events).
fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A storage failure as an event-log failure: only an unreachable database is retryable.
fn log_error(e: SqlError) -> EventLogError {
    match e {
        SqlError::Unavailable(m) => EventLogError::Unavailable(m),
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
                }
            );
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
                "CREATE TRIGGER poison BEFORE INSERT ON event_log WHEN NEW.event_id = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
            )
            .unwrap();
            let s = stream(StreamKind::Billing, "t1");
            let err = log
                .append(&s, events(&["a", "b", "poison", "c"]))
                .await
                .unwrap_err();
            assert!(matches!(err, EventLogError::Other(_)), "{err:?}");
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
}
