//! What a route declares about itself for the document: its operation id, prose, parameters,
//! body and replies. It sits beside the method, path, handler and caller in
//! [`super::super::router::ROUTES`], and exists only in native builds: the runtimes route with
//! the same table without linking any of it.

use std::collections::BTreeMap;

use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

/// The component schemas an operation refers to, collected while the document is built.
pub type Components = BTreeMap<String, RefOr<Schema>>;

/// Produces a schema: a `$ref` to a Rust type's component (collecting it), or an inline one.
pub type SchemaFn = fn(&mut Components) -> RefOr<Schema>;

/// The document part of a route.
#[derive(Debug)]
pub struct Doc {
    /// `operationId`: the name generated clients give the call.
    pub operation_id: &'static str,
    /// The group it is listed under.
    pub tag: &'static str,
    /// One or two sentences on what it does.
    pub summary: &'static str,
    /// What a caller must know beyond the summary; the caller requirement is added to it.
    pub notes: &'static str,
    /// Path, query and header parameters (`X-Request-Id` is added to every operation).
    pub params: &'static [Param],
    /// The request body, if any.
    pub body: Option<Body>,
    /// The answers that are not problems.
    pub replies: &'static [Reply],
    /// The statuses answered with a problem document (`default` is always added).
    pub problems: &'static [u16],
}

/// Where a parameter is.
#[derive(Debug, Clone, Copy)]
pub enum At {
    /// In the path template.
    Path,
    /// In the query string.
    Query,
    /// A request header.
    Header,
}

/// One parameter.
#[derive(Debug)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// Where it is.
    pub at: At,
    /// Whether it must be present (path parameters always are).
    pub required: bool,
    /// What it means; empty for none.
    pub description: &'static str,
    /// What it may hold.
    pub schema: SchemaFn,
}

/// A request body.
#[derive(Debug)]
pub struct Body {
    /// Whether it must be present.
    pub required: bool,
    /// Media type and schema of each accepted form.
    pub content: &'static [(&'static str, SchemaFn)],
}

/// A response header.
#[derive(Debug)]
pub enum Hdr {
    /// `X-Request-Id`, the correlation id.
    RequestId,
    /// Another header.
    Plain {
        /// Its name.
        name: &'static str,
        /// What it holds; empty for none.
        description: &'static str,
        /// Its schema.
        schema: SchemaFn,
    },
}

/// One answer.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// When it is given.
    pub description: &'static str,
    /// Media type and schema of the body; empty for none.
    pub content: &'static [(&'static str, SchemaFn)],
    /// Headers worth knowing.
    pub headers: &'static [Hdr],
}

/// A reference to `T`'s component schema; `T` and what it references become components.
pub fn of<T: ToSchema>(components: &mut Components) -> RefOr<Schema> {
    let name = T::name().into_owned();
    if !components.contains_key(&name) {
        components.insert(name.clone(), T::schema());
        let mut referenced = Vec::new();
        T::schemas(&mut referenced);
        components.extend(referenced);
    }
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name))
}

/// An inline schema of `T` (a type that is not a component of its own).
pub fn inline<T: utoipa::PartialSchema + ToSchema>(components: &mut Components) -> RefOr<Schema> {
    let mut referenced = Vec::new();
    T::schemas(&mut referenced);
    components.extend(referenced);
    T::schema()
}

/// A string.
pub fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// An integer.
pub fn integer() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Integer)
}

/// Any text body (HTML, CSV, CSS, JavaScript).
pub fn text(_: &mut Components) -> RefOr<Schema> {
    string().into()
}

/// An instant in a query: RFC 3339 or unix milliseconds.
pub fn at_or_ms(_: &mut Components) -> RefOr<Schema> {
    let rfc3339 = string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)));
    let ms = string().pattern(Some("^[0-9]{1,15}$"));
    AnyOfBuilder::new().item(rfc3339).item(ms).into()
}
