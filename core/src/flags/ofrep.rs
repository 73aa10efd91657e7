//! The OpenFeature Remote Evaluation Protocol (OFREP) bodies of flag evaluations: what the
//! delivery routes serialize, kept here so the benchmark measures exactly the routes' work.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::eval::{evaluate, Context, EvalError, Reason, Resolution};
use super::snapshot::Snapshot;
use crate::crypto;
use crate::kernel::schema::string_enum;

/// One OFREP evaluation: a value with reason and variant, a disabled flag (no value: the
/// caller's default applies), or an error code with details.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Evaluation<'a> {
    /// A served value.
    Value {
        /// The flag key.
        key: &'a str,
        /// The value.
        value: &'a Value,
        /// `STATIC`, `TARGETING_MATCH`, `SPLIT` or `DEFAULT`.
        reason: &'static str,
        /// The variant name.
        variant: Cow<'a, str>,
    },
    /// A disabled flag.
    Disabled {
        /// The flag key.
        key: &'a str,
        /// `DISABLED`.
        reason: &'static str,
    },
    /// The context does not allow the evaluation.
    Error {
        /// The flag key.
        key: &'a str,
        /// OFREP error code.
        #[serde(rename = "errorCode")]
        error_code: &'static str,
        /// Why.
        #[serde(rename = "errorDetails")]
        error_details: String,
    },
}

/// One object with every member of the three shapes: `key` always, the others as the shape has
/// them.
impl PartialSchema for Evaluation<'_> {
    fn schema() -> RefOr<Schema> {
        let reasons: Vec<&str> = Reason::ALL.into_iter().map(Reason::as_str).collect();
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "One OFREP evaluation: a value with reason and variant, a disabled flag (no \
                 value: the caller's default applies), or an error code with details.",
            ))
            .property(
                "key",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("The flag key.")),
            )
            .required("key")
            .property("value", Object::with_type(SchemaType::AnyValue))
            .property("reason", string_enum(&reasons))
            .property(
                "variant",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("The variant name.")),
            )
            .property("errorCode", string_enum(&EvalError::CODES))
            .property("errorDetails", Object::with_type(Type::String))
            .into()
    }
}

impl ToSchema for Evaluation<'_> {
    fn name() -> Cow<'static, str> {
        "OfrepEvaluation".into()
    }
}

/// The OFREP shape of a resolution.
pub fn evaluation<'a>(key: &'a str, r: Resolution<'a>) -> Evaluation<'a> {
    match r {
        Resolution::Value {
            value,
            variant,
            reason,
        } => Evaluation::Value {
            key,
            value,
            reason: reason.as_str(),
            variant,
        },
        Resolution::Disabled => Evaluation::Disabled {
            key,
            reason: "DISABLED",
        },
        Resolution::Error(e) => Evaluation::Error {
            key,
            error_code: e.code(),
            error_details: e.details(),
        },
    }
}

/// Body of a bulk evaluation.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OfrepBulkResponse)]
pub struct Bulk<'a> {
    /// Every flag of the tenant, evaluated.
    flags: Vec<Evaluation<'a>>,
}

/// Every flag of the snapshot evaluated for `context`, as the JSON body of an OFREP bulk
/// response.
pub fn bulk_body(snap: &Snapshot, context: &Context) -> Result<Vec<u8>, serde_json::Error> {
    let body = Bulk {
        flags: snap
            .flags
            .iter()
            .map(|f| evaluation(f.key.as_str(), evaluate(f, context)))
            .collect(),
    };
    serde_json::to_vec(&body)
}

/// The entity tag of a bulk evaluation: the flag-set version and a hash of the context (the
/// same set and context evaluate alike, so a matching tag can be answered 304 unevaluated).
/// The context's members are serialized in key order, so equal contexts hash alike.
pub fn bulk_etag(snap: &Snapshot, context: &Context) -> String {
    let canonical = serde_json::to_string(context).unwrap_or_default();
    let h = crypto::sha256_hex(canonical.as_bytes());
    format!("\"{}-{}\"", snap.version, h.get(..16).unwrap_or(&h))
}
