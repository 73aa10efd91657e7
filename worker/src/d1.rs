//! [`D1Sql`]: core's `Sql` port over the D1 binding `DB`. Statements are prepared and bound
//! one by one; a batch goes to `db.batch()`, which D1 runs as one transaction.

use edgeplane_core::ports::{Row, Sql, SqlError, Stmt};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::worker_sys::{D1Database as D1Sys, D1PreparedStatement};

use crate::sql_js::{classify_js, from_js, js_error_message, params_to_js};

/// The `Sql` port over a D1 database binding (a cheap handle: clone freely).
#[derive(Debug, Clone)]
pub struct D1Sql {
    db: D1Sys,
}

impl D1Sql {
    /// Wraps a D1 binding.
    pub fn new(db: &worker::D1Database) -> Self {
        let raw: &JsValue = db.as_ref();
        D1Sql {
            db: raw.clone().unchecked_into(),
        }
    }

    fn prepare(&self, stmt: &Stmt) -> Result<D1PreparedStatement, SqlError> {
        let prepared = self.db.prepare(stmt.sql).map_err(|e| classify_js(&e))?;
        if stmt.params.is_empty() {
            return Ok(prepared);
        }
        let params: Array = params_to_js(&stmt.params)?.into_iter().collect();
        prepared.bind(params).map_err(|e| classify_js(&e))
    }
}

/// Awaits a D1 promise, classifying a rejection.
async fn settle(promise: Result<js_sys::Promise, JsValue>) -> Result<JsValue, SqlError> {
    let promise = promise.map_err(|e| classify_js(&e))?;
    JsFuture::from(promise).await.map_err(|e| classify_js(&e))
}

/// `meta.changes` of one D1 result (0 when absent, as for DDL).
fn changes(result: &JsValue) -> Result<u64, SqlError> {
    let meta =
        Reflect::get(result, &"meta".into()).map_err(|e| SqlError::Decode(js_error_message(&e)))?;
    if meta.is_undefined() || meta.is_null() {
        return Ok(0);
    }
    let n = Reflect::get(&meta, &"changes".into())
        .map_err(|e| SqlError::Decode(js_error_message(&e)))?;
    Ok(n.as_f64().map_or(0, |n| n.max(0.0) as u64))
}

/// Converts `results` (an array of row objects) into rows.
fn rows(result: &JsValue) -> Result<Vec<Row>, SqlError> {
    let results = Reflect::get(result, &"results".into())
        .map_err(|e| SqlError::Decode(js_error_message(&e)))?;
    let Some(results) = results.dyn_ref::<Array>() else {
        return Ok(Vec::new());
    };
    results
        .iter()
        .map(|obj| {
            let obj: Object = obj.unchecked_into();
            let mut row = Row::default();
            for entry in Object::entries(&obj).iter() {
                let entry: Array = entry.unchecked_into();
                let name = entry.get(0).as_string().unwrap_or_default();
                row.0.insert(name, from_js(&entry.get(1))?);
            }
            Ok(row)
        })
        .collect()
}

impl Sql for D1Sql {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, SqlError> {
        let prepared = self.prepare(&stmt)?;
        let result = settle(prepared.all()).await?;
        rows(&result)
    }

    async fn execute(&self, stmt: Stmt) -> Result<u64, SqlError> {
        let prepared = self.prepare(&stmt)?;
        let result = settle(prepared.run()).await?;
        changes(&result)
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, SqlError> {
        if stmts.is_empty() {
            return Ok(Vec::new());
        }
        let prepared: Array = stmts
            .iter()
            .map(|s| self.prepare(s).map(JsValue::from))
            .collect::<Result<_, _>>()?;
        let results = settle(self.db.batch(prepared)).await?;
        let results: Array = results
            .dyn_into()
            .map_err(|_| SqlError::Decode("D1 batch did not return an array".into()))?;
        results.iter().map(|r| changes(&r)).collect()
    }
}
