//! [`DoSql`]: core's `Sql` port over a Durable Object's SQLite storage (`ctx.storage.sql`).
//! Every call is synchronous underneath; a batch runs inside `ctx.storage.transactionSync`, so
//! it commits as a whole or rolls back as a whole.

use std::cell::RefCell;

use edgeplane_core::ports::{Row, Sql, SqlError, Stmt, Value};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::{SqlStorage, SqlStorageValue};

use crate::sql_js::{classify, classify_js, params_to_js};

#[wasm_bindgen]
extern "C" {
    /// The part of `DurableObjectStorage` that workers-rs 0.8.7 does not bind.
    #[wasm_bindgen(extends = js_sys::Object)]
    #[derive(Clone)]
    type TxStorage;

    /// `storage.transactionSync(fn)`: runs `fn` in a SQLite transaction, commits when it returns
    /// and rolls back when it throws (an `Err` from the closure is thrown).
    #[wasm_bindgen(method, catch, js_name = transactionSync)]
    fn transaction_sync(
        this: &TxStorage,
        f: &mut dyn FnMut() -> Result<JsValue, JsValue>,
    ) -> Result<JsValue, JsValue>;
}

/// The `Sql` port over a Durable Object's SQLite storage.
#[derive(Clone)]
pub struct DoSql {
    sql: SqlStorage,
    tx: TxStorage,
}

impl DoSql {
    /// Wraps the storage of one Durable Object (its class must be a `new_sqlite_classes` one).
    pub fn new(storage: &worker::durable::Storage) -> Self {
        DoSql {
            sql: storage.sql(),
            tx: storage.as_raw().unchecked_ref::<TxStorage>().clone(),
        }
    }

    /// Runs one statement to completion and returns its rows (none for writes).
    fn run(&self, stmt: &Stmt) -> Result<Vec<Row>, SqlError> {
        let cursor = self
            .sql
            .exec_raw(stmt.sql, params_to_js(&stmt.params)?)
            .map_err(|e| classify(e.to_string()))?;
        let names = cursor.column_names();
        let mut rows = Vec::new();
        // Iterating steps the statement: constraint errors can surface here, not only in exec.
        for values in cursor.raw() {
            let values = values.map_err(|e| classify(e.to_string()))?;
            let mut row = Row::default();
            for (name, value) in names.iter().zip(values) {
                row.0.insert(name.clone(), convert(value));
            }
            rows.push(row);
        }
        Ok(rows)
    }

    /// Runs one write and returns how many rows it changed. The cursor's `rowsWritten` is a
    /// billing metric, not SQLite's change count, so the count is the difference of
    /// `total_changes()` around the statement (0 for DDL, as D1's `meta.changes`).
    fn run_write(&self, stmt: &Stmt) -> Result<u64, SqlError> {
        let before = self.total_changes()?;
        self.run(stmt)?;
        Ok(self.total_changes()?.saturating_sub(before))
    }

    /// SQLite's `total_changes()` on this object's connection.
    fn total_changes(&self) -> Result<u64, SqlError> {
        let rows = self.run(&Stmt::new("SELECT total_changes() AS n"))?;
        let n = rows.first().map(|r| r.i64("n")).transpose()?.unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

fn convert(v: SqlStorageValue) -> Value {
    match v {
        SqlStorageValue::Null => Value::Null,
        SqlStorageValue::Boolean(b) => Value::Integer(i64::from(b)),
        SqlStorageValue::Integer(i) => Value::Integer(i),
        SqlStorageValue::Float(f) => Value::Real(f),
        SqlStorageValue::String(s) => Value::Text(s),
        SqlStorageValue::Blob(b) => Value::Blob(b),
    }
}

impl Sql for DoSql {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, SqlError> {
        self.run(&stmt)
    }

    async fn execute(&self, stmt: Stmt) -> Result<u64, SqlError> {
        self.run_write(&stmt)
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, SqlError> {
        let counts = RefCell::new(Vec::with_capacity(stmts.len()));
        // The first failure, kept as classified; JS only sees that the closure threw.
        let failure = RefCell::new(None);
        let outcome = self.tx.transaction_sync(&mut || {
            for stmt in &stmts {
                match self.run_write(stmt) {
                    Ok(n) => counts.borrow_mut().push(n),
                    Err(e) => {
                        let message = e.to_string();
                        *failure.borrow_mut() = Some(e);
                        return Err(JsValue::from(js_sys::Error::new(&message)));
                    }
                }
            }
            Ok(JsValue::UNDEFINED)
        });
        match (outcome, failure.into_inner()) {
            (Ok(_), None) => Ok(counts.into_inner()),
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(classify_js(&e)),
        }
    }
}

impl std::fmt::Debug for DoSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DoSql")
    }
}
