//! Spin's own host interfaces, `fermyon:spin/{key-value,sqlite,variables}@2.0.0`, and the
//! `wasi:keyvalue/{store,batch}@0.2.0-draft2` that Spin offers beside them, over rusqlite.
//!
//! Storage mirrors local Spin: key-value pairs of every store live in one SQLite file
//! (`kv.db`, table `spin_key_value (store, key, value)`) behind one connection shared by the
//! process; each SQLite database label has its own file (`sqlite_<label>.db`) and, as in Spin's
//! `sqlite-inproc`, every guest `connection.open` gets a SQLite connection of its own, opened
//! by its first statement and closed with it (so with the request's instance), with SQLite's
//! defaults as Spin leaves them (rollback journal, full sync). A request that uses SQL pays for
//! opening the file and parsing its schema, as on Spin; `changes()` and `BEGIN`/`COMMIT`
//! spanning several `execute` calls stay correct with concurrent requests.
//!
//! As in Spin's key-value factor, a `wasi:keyvalue` bucket is a Spin key-value store under
//! another name: `store.open("default")` opens the same label over the same rows, so a value
//! written through one interface is read through the other. The batch calls run as Spin's
//! SQLite store runs them (crates/key-value-spin): `get-many` and `delete-many` are one
//! statement over `key IN rarray(...)`, `set-many` one transaction, each in a single
//! `block_in_place`; an empty batch returns before touching the store. `get-many` returns what
//! that query returns, as Spin does: one pair per stored key, in SQLite's order, and nothing
//! for a missing key (not the `none` entry the WIT describes), so a guest must match the pairs
//! by key, not by position. `atomics` is not provided.

use crate::manifest::{VariableError, Variables};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{named_params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime::error::Context as _;
use wasmtime::{bail, Result};

wasmtime::component::bindgen!({
    path: "wit",
    world: "spin-host-imports",
    imports: { default: trappable },
    with: {
        "fermyon:spin/key-value.store": KvStore,
        "fermyon:spin/sqlite.connection": SqliteConnection,
        "wasi:keyvalue/store.bucket": KvStore,
    },
});

use fermyon::spin::{key_value, sqlite, variables};
use wasi::keyvalue::{batch, store as wasi_kv};

/// The key-value `store` resource and the `wasi:keyvalue` `bucket`: the label it was opened
/// with.
pub struct KvStore {
    label: String,
}

/// The `connection` resource: a SQLite connection of its own, opened by its first statement
/// (Spin's `InProcConnection` does the same).
pub struct SqliteConnection {
    path: PathBuf,
    db: Option<Connection>,
}

/// State shared by every request: the open databases and the component's grants.
pub struct SpinServices {
    kv: Mutex<Connection>,
    kv_labels: Vec<String>,
    sqlite: HashMap<String, PathBuf>,
    variables: Variables,
}

impl SpinServices {
    /// Opens (creating if missing) `kv.db`; names the `sqlite_<label>.db` of each granted
    /// database (created by its first connection).
    pub fn open(
        state_dir: &Path,
        kv_labels: Vec<String>,
        sqlite_labels: &[String],
        variables: Variables,
    ) -> Result<Self> {
        std::fs::create_dir_all(state_dir).with_context(|| format!("creating {state_dir:?}"))?;
        let kv = open_db(&state_dir.join("kv.db"))?;
        // Test data: WAL and no fsync per commit trade power-loss durability for speed (an fsync
        // per write costs ~2 ms here). Spin's own key-value file keeps SQLite's rollback journal
        // and full sync, so a request that writes key-value costs more there than here.
        kv.pragma_update(None, "journal_mode", "WAL")?;
        kv.pragma_update(None, "synchronous", "NORMAL")?;
        prepare_kv(&kv)?;
        let mut sqlite = HashMap::new();
        for label in sqlite_labels {
            if !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                bail!("unsupported sqlite database label {label:?}");
            }
            sqlite.insert(label.clone(), state_dir.join(format!("sqlite_{label}.db")));
        }
        Ok(Self {
            kv: Mutex::new(kv),
            kv_labels,
            sqlite,
            variables,
        })
    }
}

/// Creates Spin's key-value table and loads `rarray()` for the batch statements, as Spin's
/// `KeyValueSqlite::create_connection`.
fn prepare_kv(kv: &Connection) -> rusqlite::Result<()> {
    kv.execute_batch(
        "CREATE TABLE IF NOT EXISTS spin_key_value (
            store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
            PRIMARY KEY (store, key))",
    )?;
    rusqlite::vtab::array::load_module(kv)
}

/// Opens a SQLite file as Spin does (rusqlite's defaults: a busy timeout of 5 s).
fn open_db(path: &Path) -> Result<Connection> {
    let db = Connection::open(path).with_context(|| format!("opening {path:?}"))?;
    db.busy_timeout(Duration::from_secs(5))?;
    Ok(db)
}

/// Runs `f` as Spin's key-value store runs each call (crates/key-value-spin: `open` and every
/// operation in `tokio::task::block_in_place`). This decides the scheduling that follows: the
/// worker thread hands its run queue to another thread and, unless it takes it back before that
/// thread starts, the rest of the guest's turn runs without one. The HTTP connection task the
/// guest then wakes by setting its response runs at once on another worker, in parallel with the
/// guest, instead of after the guest yields; a response whose body the guest writes after
/// setting it then goes out in pieces, as it does on Spin.
fn spin_blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A poisoned lock only means another request panicked mid-call; SQLite itself is consistent.
fn lock(db: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    db.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the generated `Host` traits are implemented on: the shared services plus the
/// request's resource table.
pub struct SpinView<'a> {
    pub services: &'a SpinServices,
    pub table: &'a mut ResourceTable,
}

struct SpinApis;
impl HasData for SpinApis {
    type Data<'a> = SpinView<'a>;
}

/// Adds the Spin and `wasi:keyvalue` interfaces to `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> SpinView<'_>,
) -> Result<()> {
    SpinHostImports::add_to_linker::<T, SpinApis>(linker, get)
}

type KvResult<T> = Result<Result<T, key_value::Error>>;
type WasiKvResult<T> = Result<Result<T, wasi_kv::Error>>;

impl From<rusqlite::Error> for key_value::Error {
    fn from(e: rusqlite::Error) -> Self {
        Self::Other(e.to_string())
    }
}

impl From<rusqlite::Error> for wasi_kv::Error {
    fn from(e: rusqlite::Error) -> Self {
        Self::Other(e.to_string())
    }
}

impl SpinView<'_> {
    /// Opens `label` for either key-value interface if the manifest grants it.
    fn open_kv<E>(&mut self, label: String, denied: E) -> Result<Result<Resource<KvStore>, E>> {
        // Every granted label is provisioned here; real Spin needs a runtime config for labels
        // other than "default" and answers `no-such-store` for granted ones it cannot find.
        if !self.services.kv_labels.contains(&label) {
            return Ok(Err(denied));
        }
        // Spin's store manager looks its (once opened) connection up inside `block_in_place`
        // on every open.
        spin_blocking(|| ());
        Ok(Ok(self.table.push(KvStore { label })?))
    }

    /// Runs `f` on `kv.db` for the store behind `store`, inside `block_in_place` as Spin's
    /// key-value store does every operation (see [`spin_blocking`]).
    fn kv<T, E: From<rusqlite::Error>>(
        &mut self,
        store: &Resource<KvStore>,
        f: impl FnOnce(&mut Connection, &str) -> rusqlite::Result<T>,
    ) -> Result<Result<T, E>> {
        let label = &self.table.get(store)?.label;
        let result = spin_blocking(|| f(&mut lock(&self.services.kv), label));
        Ok(result.map_err(E::from))
    }
}

/// Binds a batch's keys for `rarray(:keys)`.
fn key_array(keys: Vec<String>) -> rusqlite::vtab::array::Array {
    Rc::new(keys.into_iter().map(SqlValue::from).collect())
}

impl key_value::Host for SpinView<'_> {}

impl key_value::HostStore for SpinView<'_> {
    fn open(&mut self, label: String) -> KvResult<Resource<KvStore>> {
        self.open_kv(label, key_value::Error::AccessDenied)
    }

    fn get(&mut self, store: Resource<KvStore>, key: String) -> KvResult<Option<Vec<u8>>> {
        self.kv(&store, |db, label| get(db, label, &key))
    }

    fn set(&mut self, store: Resource<KvStore>, key: String, value: Vec<u8>) -> KvResult<()> {
        self.kv(&store, |db, label| set(db, label, &key, &value))
    }

    fn delete(&mut self, store: Resource<KvStore>, key: String) -> KvResult<()> {
        self.kv(&store, |db, label| delete(db, label, &key))
    }

    fn exists(&mut self, store: Resource<KvStore>, key: String) -> KvResult<bool> {
        self.kv(&store, |db, label| exists(db, label, &key))
    }

    fn get_keys(&mut self, store: Resource<KvStore>) -> KvResult<Vec<String>> {
        self.kv(&store, |db, label| keys(db, label))
    }

    fn drop(&mut self, store: Resource<KvStore>) -> Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

/// The single-key statements, shared by both key-value interfaces.
fn get(db: &Connection, label: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    db.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .query_row((label, key), |row| row.get(0))
        .optional()
}

fn set(db: &Connection, label: &str, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    db.prepare_cached(
        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
    )?
    .execute((label, key, value))
    .map(drop)
}

fn delete(db: &Connection, label: &str, key: &str) -> rusqlite::Result<()> {
    db.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .execute((label, key))
        .map(drop)
}

fn exists(db: &Connection, label: &str, key: &str) -> rusqlite::Result<bool> {
    db.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2 LIMIT 1")?
        .exists((label, key))
}

fn keys(db: &Connection, label: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = db.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?;
    let keys = stmt.query_map([label], |row| row.get(0))?;
    keys.collect()
}

/// The stored pairs among `keys`: one query, so one pair per stored key in SQLite's order and
/// no pair for a missing key, as Spin's `get_many`.
fn get_many(
    db: &Connection,
    label: &str,
    keys: Vec<String>,
) -> rusqlite::Result<Vec<(String, Option<Vec<u8>>)>> {
    let mut stmt = db.prepare_cached(
        "SELECT key, value FROM spin_key_value WHERE store = :store AND key IN rarray(:keys)",
    )?;
    let params = named_params! { ":store": label, ":keys": key_array(keys) };
    let pairs = stmt.query_map(params, |row| Ok((row.get(0)?, Some(row.get(1)?))))?;
    pairs.collect()
}

impl wasi_kv::Host for SpinView<'_> {
    fn open(&mut self, identifier: String) -> WasiKvResult<Resource<KvStore>> {
        self.open_kv(identifier, wasi_kv::Error::AccessDenied)
    }
}

impl wasi_kv::HostBucket for SpinView<'_> {
    fn get(&mut self, bucket: Resource<KvStore>, key: String) -> WasiKvResult<Option<Vec<u8>>> {
        self.kv(&bucket, |db, label| get(db, label, &key))
    }

    fn set(&mut self, bucket: Resource<KvStore>, key: String, value: Vec<u8>) -> WasiKvResult<()> {
        self.kv(&bucket, |db, label| set(db, label, &key, &value))
    }

    fn delete(&mut self, bucket: Resource<KvStore>, key: String) -> WasiKvResult<()> {
        self.kv(&bucket, |db, label| delete(db, label, &key))
    }

    fn exists(&mut self, bucket: Resource<KvStore>, key: String) -> WasiKvResult<bool> {
        self.kv(&bucket, |db, label| exists(db, label, &key))
    }

    /// Every key at once, as Spin, which refuses a cursor (it never returns one).
    fn list_keys(
        &mut self,
        bucket: Resource<KvStore>,
        cursor: Option<String>,
    ) -> WasiKvResult<wasi_kv::KeyResponse> {
        if cursor.is_some() {
            let e = "list_keys: cursor not supported".to_string();
            return Ok(Err(wasi_kv::Error::Other(e)));
        }
        let keys = self.kv(&bucket, |db, label| keys(db, label))?;
        Ok(keys.map(|keys| wasi_kv::KeyResponse { keys, cursor: None }))
    }

    fn drop(&mut self, bucket: Resource<KvStore>) -> Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl batch::Host for SpinView<'_> {
    fn get_many(
        &mut self,
        bucket: Resource<KvStore>,
        keys: Vec<String>,
    ) -> WasiKvResult<Vec<(String, Option<Vec<u8>>)>> {
        if keys.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        self.kv(&bucket, |db, label| get_many(db, label, keys))
    }

    fn set_many(
        &mut self,
        bucket: Resource<KvStore>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> WasiKvResult<()> {
        if key_values.is_empty() {
            return Ok(Ok(()));
        }
        self.kv(&bucket, |db, label| {
            let tx = db.transaction()?;
            for (key, value) in &key_values {
                set(&tx, label, key, value)?;
            }
            tx.commit()
        })
    }

    fn delete_many(&mut self, bucket: Resource<KvStore>, keys: Vec<String>) -> WasiKvResult<()> {
        if keys.is_empty() {
            return Ok(Ok(()));
        }
        self.kv(&bucket, |db, label| {
            db.prepare_cached(
                "DELETE FROM spin_key_value WHERE store = :store AND key IN rarray(:keys)",
            )?
            .execute(named_params! { ":store": label, ":keys": key_array(keys) })
            .map(drop)
        })
    }
}

impl sqlite::Host for SpinView<'_> {}

impl sqlite::HostConnection for SpinView<'_> {
    fn open(
        &mut self,
        database: String,
    ) -> Result<Result<Resource<SqliteConnection>, sqlite::Error>> {
        let Some(path) = self.services.sqlite.get(&database) else {
            return Ok(Err(sqlite::Error::AccessDenied));
        };
        let conn = SqliteConnection {
            path: path.clone(),
            db: None,
        };
        Ok(Ok(self.table.push(conn)?))
    }

    fn execute(
        &mut self,
        conn: Resource<SqliteConnection>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> Result<Result<sqlite::QueryResult, sqlite::Error>> {
        let conn = self.table.get_mut(&conn)?;
        let db = match &mut conn.db {
            Some(db) => db,
            None => match open_db(&conn.path) {
                Ok(db) => conn.db.insert(db),
                Err(e) => return Ok(Err(sqlite::Error::Io(format!("{e:#}")))),
            },
        };
        Ok(execute(db, &statement, parameters).map_err(|e| sqlite::Error::Io(e.to_string())))
    }

    fn drop(&mut self, conn: Resource<SqliteConnection>) -> Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

/// Runs one statement with positional parameters and returns every row, typed as stored.
fn execute(
    db: &Connection,
    statement: &str,
    parameters: Vec<sqlite::Value>,
) -> rusqlite::Result<sqlite::QueryResult> {
    let mut stmt = db.prepare_cached(statement)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let params = parameters.into_iter().map(|v| match v {
        sqlite::Value::Integer(i) => SqlValue::Integer(i),
        sqlite::Value::Real(f) => SqlValue::Real(f),
        sqlite::Value::Text(s) => SqlValue::Text(s),
        sqlite::Value::Blob(b) => SqlValue::Blob(b),
        sqlite::Value::Null => SqlValue::Null,
    });
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..columns.len())
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    ValueRef::Integer(i) => sqlite::Value::Integer(i),
                    ValueRef::Real(f) => sqlite::Value::Real(f),
                    ValueRef::Text(t) => sqlite::Value::Text(String::from_utf8_lossy(t).into()),
                    ValueRef::Blob(b) => sqlite::Value::Blob(b.to_vec()),
                    ValueRef::Null => sqlite::Value::Null,
                })
            })
            .collect::<rusqlite::Result<_>>()?;
        out.push(sqlite::RowResult { values });
    }
    Ok(sqlite::QueryResult { columns, rows: out })
}

impl variables::Host for SpinView<'_> {
    fn get(&mut self, name: String) -> Result<Result<String, variables::Error>> {
        Ok(self.services.variables.get(&name).map_err(|e| match e {
            VariableError::InvalidName(n) => variables::Error::InvalidName(n),
            VariableError::Undefined(m) => variables::Error::Undefined(m),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_many_returns_the_stored_pairs_of_its_store_only() {
        let db = Connection::open_in_memory().unwrap();
        prepare_kv(&db).unwrap();
        set(&db, "default", "b", b"2").unwrap();
        set(&db, "default", "a", b"1").unwrap();
        set(&db, "other", "c", b"3").unwrap();
        let keys = ["b", "missing", "a", "c"].map(String::from).to_vec();
        let mut pairs = get_many(&db, "default", keys).unwrap();
        pairs.sort();
        let one = |k: &str, v: &[u8]| (k.to_string(), Some(v.to_vec()));
        assert_eq!(pairs, [one("a", b"1"), one("b", b"2")]);
    }
}
