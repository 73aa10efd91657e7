//! Spin's own host interfaces, `fermyon:spin/{key-value,sqlite,variables}@2.0.0`, over rusqlite.
//!
//! Storage mirrors local Spin: key-value pairs of every store live in one SQLite file
//! (`kv.db`, table `spin_key_value (store, key, value)`) behind one connection shared by the
//! process; each SQLite database label has its own file (`sqlite_<label>.db`) and, as in Spin's
//! `sqlite-inproc`, every guest `connection.open` gets a SQLite connection of its own, opened
//! by its first statement and closed with it (so with the request's instance), with SQLite's
//! defaults as Spin leaves them (rollback journal, full sync). A request that uses SQL pays for
//! opening the file and parsing its schema, as on Spin; `changes()` and `BEGIN`/`COMMIT`
//! spanning several `execute` calls stay correct with concurrent requests.

use crate::manifest::{VariableError, Variables};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
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
    },
});

use fermyon::spin::{key_value, sqlite, variables};

/// The `store` resource: the label it was opened with.
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
        kv.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                PRIMARY KEY (store, key))",
        )?;
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

/// Adds the three Spin interfaces to `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> SpinView<'_>,
) -> Result<()> {
    SpinHostImports::add_to_linker::<T, SpinApis>(linker, get)
}

type KvResult<T> = Result<Result<T, key_value::Error>>;

impl SpinView<'_> {
    /// Runs `f` on `kv.db` for the store behind `store`, inside `block_in_place` as Spin's
    /// key-value store does every operation (see [`spin_blocking`]).
    fn kv<T>(
        &mut self,
        store: &Resource<KvStore>,
        f: impl FnOnce(&Connection, &str) -> rusqlite::Result<T>,
    ) -> KvResult<T> {
        let label = &self.table.get(store)?.label;
        let result = spin_blocking(|| f(&lock(&self.services.kv), label));
        Ok(result.map_err(|e| key_value::Error::Other(e.to_string())))
    }
}

impl key_value::Host for SpinView<'_> {}

impl key_value::HostStore for SpinView<'_> {
    fn open(&mut self, label: String) -> KvResult<Resource<KvStore>> {
        // Every granted label is provisioned here; real Spin needs a runtime config for labels
        // other than "default" and answers `no-such-store` for granted ones it cannot find.
        if !self.services.kv_labels.contains(&label) {
            return Ok(Err(key_value::Error::AccessDenied));
        }
        // Spin's store manager looks its (once opened) connection up inside `block_in_place`
        // on every open.
        spin_blocking(|| ());
        Ok(Ok(self.table.push(KvStore { label })?))
    }

    fn get(&mut self, store: Resource<KvStore>, key: String) -> KvResult<Option<Vec<u8>>> {
        self.kv(&store, |db, label| {
            db.query_row(
                "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                (label, &key),
                |row| row.get(0),
            )
            .optional()
        })
    }

    fn set(&mut self, store: Resource<KvStore>, key: String, value: Vec<u8>) -> KvResult<()> {
        self.kv(&store, |db, label| {
            db.execute(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                (label, &key, &value),
            )
            .map(drop)
        })
    }

    fn delete(&mut self, store: Resource<KvStore>, key: String) -> KvResult<()> {
        self.kv(&store, |db, label| {
            db.execute(
                "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2",
                (label, &key),
            )
            .map(drop)
        })
    }

    fn exists(&mut self, store: Resource<KvStore>, key: String) -> KvResult<bool> {
        self.kv(&store, |db, label| {
            db.query_row(
                "SELECT EXISTS (SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2)",
                (label, &key),
                |row| row.get(0),
            )
        })
    }

    fn get_keys(&mut self, store: Resource<KvStore>) -> KvResult<Vec<String>> {
        self.kv(&store, |db, label| {
            let mut stmt = db.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?;
            let keys = stmt.query_map([label], |row| row.get(0))?;
            keys.collect()
        })
    }

    fn drop(&mut self, store: Resource<KvStore>) -> Result<()> {
        self.table.delete(store)?;
        Ok(())
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
