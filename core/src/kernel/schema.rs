//! Building blocks for the schemas that request and response types declare with
//! `utoipa::ToSchema`, where a field's Rust type is wider than what it may hold.

use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// A string that is one of `values`.
pub fn string_enum(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}
