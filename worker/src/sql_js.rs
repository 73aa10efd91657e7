//! What D1 and Durable Object SQL share: turning core's [`Value`]s into JS values for binding,
//! JS result values back into [`Value`]s, and the classification of SQLite error messages into
//! [`SqlError`].

use edgeplane_core::ports::{SqlError, Value};
use js_sys::{Array, ArrayBuffer, Number, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

/// Largest integer a JS number carries exactly (2^53 - 1).
const MAX_SAFE: i64 = (1 << 53) - 1;

/// Converts one bound parameter. Integers beyond ±(2^53 - 1) are refused rather than rounded:
/// both D1 and Durable Object SQL take JS numbers.
pub fn to_js(value: &Value) -> Result<JsValue, SqlError> {
    Ok(match value {
        Value::Null => JsValue::NULL,
        Value::Integer(v) if (-MAX_SAFE..=MAX_SAFE).contains(v) => JsValue::from_f64(*v as f64),
        Value::Integer(v) => {
            return Err(SqlError::Other(format!(
                "integer parameter {v} is outside the JS safe-integer range"
            )))
        }
        Value::Real(v) => JsValue::from_f64(*v),
        Value::Text(v) => JsValue::from_str(v),
        Value::Blob(v) => Uint8Array::from(v.as_slice()).into(),
    })
}

/// Converts every parameter of a statement into a JS array.
pub fn params_to_js(params: &[Value]) -> Result<Vec<JsValue>, SqlError> {
    params.iter().map(to_js).collect()
}

/// Converts one column value read back from D1 or Durable Object SQL. Numbers that are safe
/// integers become [`Value::Integer`] (JS has a single number type); blobs arrive as
/// `ArrayBuffer`, `Uint8Array` or an array of byte numbers depending on the runtime.
pub fn from_js(v: &JsValue) -> Result<Value, SqlError> {
    if v.is_null() || v.is_undefined() {
        return Ok(Value::Null);
    }
    if let Some(s) = v.as_string() {
        return Ok(Value::Text(s));
    }
    if let Some(n) = v.as_f64() {
        return Ok(if Number::is_safe_integer(v) {
            Value::Integer(n as i64)
        } else {
            Value::Real(n)
        });
    }
    if let Some(b) = v.as_bool() {
        return Ok(Value::Integer(i64::from(b)));
    }
    if let Some(bytes) = v.dyn_ref::<Uint8Array>() {
        return Ok(Value::Blob(bytes.to_vec()));
    }
    if let Some(buf) = v.dyn_ref::<ArrayBuffer>() {
        return Ok(Value::Blob(Uint8Array::new(buf).to_vec()));
    }
    if let Some(arr) = v.dyn_ref::<Array>() {
        let bytes = arr
            .iter()
            .map(|b| {
                b.as_f64()
                    .filter(|n| (0.0..=255.0).contains(n) && n.fract() == 0.0)
                    .map(|n| n as u8)
            })
            .collect::<Option<Vec<u8>>>();
        return bytes
            .map(Value::Blob)
            .ok_or_else(|| SqlError::Decode("array column that is not a byte array".into()));
    }
    Err(SqlError::Decode(format!(
        "unsupported column value of JS type {:?}",
        v.js_typeof().as_string()
    )))
}

/// The message of a thrown JS value, with its `cause` chain (D1 puts SQLite's text there).
pub fn js_error_message(e: &JsValue) -> String {
    let mut parts = Vec::new();
    let mut cur = e.clone();
    for _ in 0..4 {
        if let Some(err) = cur.dyn_ref::<js_sys::Error>() {
            let message = String::from(err.message());
            // D1 repeats SQLite's text from `cause` in its own message.
            if !parts.iter().any(|p: &String| p.contains(&message)) {
                parts.push(message);
            }
            cur = err.cause();
            if cur.is_undefined() || cur.is_null() {
                break;
            }
        } else {
            parts.push(cur.as_string().unwrap_or_else(|| format!("{cur:?}")));
            break;
        }
    }
    parts.join(": ")
}

/// Classifies a SQLite/D1 error message: constraint refusals are the caller's conflict, a
/// short list of transient platform failures may be retried, everything else is a bug or an
/// outage.
pub fn classify(message: String) -> SqlError {
    const CONSTRAINT: [&str; 5] = [
        "UNIQUE constraint failed",
        "FOREIGN KEY constraint failed",
        "CHECK constraint failed",
        "NOT NULL constraint failed",
        "PRIMARY KEY constraint failed",
    ];
    // D1's documented retryable errors and Durable Object resets.
    const TRANSIENT: [&str; 8] = [
        "Network connection lost",
        "overloaded",
        "storage caused object to be reset",
        "Durable Object reset",
        "Cannot resolve D1 DB due to transient issue",
        "D1 DB reset because its code was updated",
        "internal error",
        "timed out",
    ];
    if CONSTRAINT.iter().any(|c| message.contains(c)) || message.contains("SQLITE_CONSTRAINT") {
        SqlError::Constraint(message)
    } else if TRANSIENT.iter().any(|t| {
        message
            .to_ascii_lowercase()
            .contains(&t.to_ascii_lowercase())
    }) {
        SqlError::Unavailable(message)
    } else {
        SqlError::Other(message)
    }
}

/// Classifies a thrown JS value.
pub fn classify_js(e: &JsValue) -> SqlError {
    classify(js_error_message(e))
}
