//! Building blocks for the schemas that request and response types declare with
//! `utoipa::ToSchema`, where a field's Rust type is wider than what it may hold.

use serde::Serialize;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, Object, ObjectBuilder, Schema, SchemaType,
    Type,
};
use utoipa::openapi::RefOr;
use utoipa::PartialSchema;

/// A string that is one of `values`.
pub fn string_enum(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// `schema`, or `null` (an optional field whose value has a schema of its own).
pub fn or_null(schema: impl Into<RefOr<Schema>>) -> Schema {
    Schema::AnyOf(
        AnyOfBuilder::new()
            .item(schema)
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    )
}

/// The object schema `base` with one more required property: the schema of a type that
/// flattens `base`'s type beside one field of its own (`#[serde(flatten)]`), as one object.
/// A `base` that is not an inline object is returned unchanged.
pub fn with_property(
    base: RefOr<Schema>,
    name: &str,
    property: impl Into<RefOr<Schema>>,
) -> RefOr<Schema> {
    match base {
        RefOr::T(Schema::Object(mut object)) => {
            object.properties.insert(name.to_owned(), property.into());
            object.required.push(name.to_owned());
            RefOr::T(Schema::Object(object))
        }
        other => other,
    }
}

/// A string, or `null` (an `Option<String>` read from a request: null is the same as absent).
pub fn nullable_string() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .build()
}

/// A JSON object with any members, or null: free-form details such as an event's `metadata`.
/// `additionalProperties: true` says so explicitly (generators otherwise read an object without
/// properties as an empty one).
pub fn free_form_object_or_null() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .build()
}

/// The schema of `T` inlined, closed to properties it does not name: for a type serialized
/// as is but also read back from storage, where `#[serde(deny_unknown_fields)]` would change
/// what it reads.
pub fn closed<T: PartialSchema>() -> RefOr<Schema> {
    match T::schema() {
        RefOr::T(Schema::Object(mut o)) => {
            o.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
            RefOr::T(Schema::Object(o))
        }
        other => other,
    }
}

/// An array of `T`, each item inlined and closed (see [`closed`]).
pub fn array_of_closed<T: PartialSchema>() -> utoipa::openapi::schema::Array {
    ArrayBuilder::new().items(closed::<T>()).build()
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
