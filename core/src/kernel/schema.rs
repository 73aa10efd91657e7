//! Building blocks for the schemas that request and response types declare with
//! `utoipa::ToSchema`, where a field's Rust type is wider than what it may hold.

use serde::Serialize;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

/// A string that is one of `values`.
pub fn string_enum(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// A string that is one of `values`, or null.
pub fn nullable_string_enum(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(
            values
                .iter()
                .map(|v| serde_json::Value::from(*v))
                .chain([serde_json::Value::Null]),
        ))
        .build()
}

/// The pattern of 1 to `max` characters none of which is a control character (what
/// `char::is_control` refuses: U+0000 to U+001F and U+007F to U+009F).
pub fn printable_pattern(max: usize) -> String {
    format!("^[^\\x00-\\x1f\\x7f-\\x9f]{{1,{max}}}$")
}

/// A JSON Schema keyword that utoipa's schema types do not model (`not`, `contains`, or a
/// `oneOf` beside `properties`), for a builder's `extensions`: utoipa writes extension members
/// beside the keywords it models. `value` is a utoipa schema (or a list of them).
pub fn keyword(name: &str, value: impl Serialize) -> Option<Extensions> {
    let value = serde_json::to_value(value).unwrap_or_default();
    Some(Extensions::from_iter([(name, value)]))
}

/// A schema that only requires the members `names` (as a branch of a choice).
pub fn requires(names: &[&str]) -> ObjectBuilder {
    names.iter().fold(
        ObjectBuilder::new().schema_type(SchemaType::AnyValue),
        |o, n| o.required(*n),
    )
}
