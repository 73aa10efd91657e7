//! Archive objects kept in SQL: the `Blobs` port for runtimes without an object store (Spin, and
//! native tests). Workers use R2 instead.

use std::cell::Cell;

use crate::ports::{BlobError, BlobPage, Blobs, Clock, Sql, SqlError, Stmt, Value};

/// The name of the table this store owns.
pub const TABLE: &str = "blob_objects";

/// The table this store owns; created on first use.
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS blob_objects (key TEXT PRIMARY KEY NOT NULL, content_type TEXT NOT NULL, bytes BLOB NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID";

/// `Blobs` over any `Sql`.
pub struct SqlBlobs<S: Sql, C: Clock> {
    sql: S,
    clock: C,
    ready: Cell<bool>,
}

impl<S: Sql, C: Clock> SqlBlobs<S, C> {
    /// A store over `sql`; its table is created on first use.
    pub fn new(sql: S, clock: C) -> Self {
        SqlBlobs {
            sql,
            clock,
            ready: Cell::new(false),
        }
    }

    async fn ensure(&self) -> Result<(), BlobError> {
        if !self.ready.get() {
            self.sql.execute(Stmt::new(SCHEMA)).await.map_err(err)?;
            self.ready.set(true);
        }
        Ok(())
    }
}

fn err(e: SqlError) -> BlobError {
    match e {
        SqlError::Unavailable(m) => BlobError::Unavailable(m),
        other => BlobError::Other(other.to_string()),
    }
}

impl<S: Sql, C: Clock> Blobs for SqlBlobs<S, C> {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        self.ensure().await?;
        self.sql
            .execute(
                Stmt::new("INSERT OR REPLACE INTO blob_objects (key, content_type, bytes, created_at) VALUES (?1, ?2, ?3, ?4)")
                    .bind(key)
                    .bind(content_type)
                    .bind(Value::Blob(bytes))
                    .bind(self.clock.now_ms()),
            )
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        self.ensure().await?;
        let rows = self
            .sql
            .query(Stmt::new("SELECT bytes FROM blob_objects WHERE key = ?1").bind(key))
            .await
            .map_err(err)?;
        Ok(rows.into_iter().next().and_then(|r| match r.get("bytes") {
            Some(Value::Blob(b)) => Some(b.clone()),
            Some(Value::Text(t)) => Some(t.clone().into_bytes()),
            _ => None,
        }))
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<BlobPage, BlobError> {
        self.ensure().await?;
        let limit = limit.clamp(1, 1000);
        // Prefix match by range (key >= prefix AND key < prefix+U+10FFFF) so no LIKE escaping is
        // needed and the primary key index is used.
        let upper = format!("{prefix}\u{10FFFF}");
        let after = cursor.unwrap_or("");
        let rows = self
            .sql
            .query(
                Stmt::new("SELECT key FROM blob_objects WHERE key >= ?1 AND key < ?2 AND key > ?3 ORDER BY key LIMIT ?4")
                    .bind(prefix)
                    .bind(upper)
                    .bind(after)
                    .bind(i64::from(limit) + 1),
            )
            .await
            .map_err(err)?;
        let mut keys = rows
            .iter()
            .map(|r| r.text("key"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let more = keys.len() > limit as usize;
        keys.truncate(limit as usize);
        let cursor = if more { keys.last().cloned() } else { None };
        Ok(BlobPage { keys, cursor })
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.ensure().await?;
        self.sql
            .execute(Stmt::new("DELETE FROM blob_objects WHERE key = ?1").bind(key))
            .await
            .map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FixedClock, NativeSql};
    use futures_executor::block_on;

    #[test]
    fn put_get_list_by_prefix_with_cursor_and_delete() {
        let store = SqlBlobs::new(NativeSql::memory(), FixedClock::default());
        block_on(async {
            for key in [
                "audit/t1/a",
                "audit/t1/b",
                "audit/t1/c",
                "audit/t10/a",
                "billing/t1/a",
            ] {
                store
                    .put(key, key.as_bytes().to_vec(), "application/x-ndjson")
                    .await
                    .unwrap();
            }
            assert_eq!(
                store.get("audit/t1/b").await.unwrap().unwrap(),
                b"audit/t1/b"
            );
            assert!(store.get("audit/t1/z").await.unwrap().is_none());

            let first = store.list("audit/t1/", None, 2).await.unwrap();
            assert_eq!(first.keys, ["audit/t1/a", "audit/t1/b"]);
            let rest = store
                .list("audit/t1/", first.cursor.as_deref(), 2)
                .await
                .unwrap();
            assert_eq!(rest.keys, ["audit/t1/c"]);
            assert!(rest.cursor.is_none());

            // '%' and '_' are not wildcards: prefixes match literally.
            assert!(store
                .list("audit/t_/", None, 10)
                .await
                .unwrap()
                .keys
                .is_empty());

            store
                .put("audit/t1/a", b"v2".to_vec(), "text/plain")
                .await
                .unwrap();
            assert_eq!(store.get("audit/t1/a").await.unwrap().unwrap(), b"v2");
            store.delete("audit/t1/a").await.unwrap();
            store.delete("audit/t1/a").await.unwrap();
            assert!(store.get("audit/t1/a").await.unwrap().is_none());
        });
    }
}
