//! Builds the OpenAPI document from the route table: every public route's method, path, caller
//! and [`Doc`], and the component schemas of the Rust types they name. `make openapi` writes it
//! to `openapi.json`, which the server serves; a test fails when the two differ.

use serde_json::{json, Map, Value};

use super::decl::{At, Components, Doc, Hdr, Param, Reply, SchemaFn};
use crate::http::router::{Caller, Route, ROUTES};

/// The document, as JSON.
pub fn document() -> Value {
    let mut components = Components::new();
    super::decl::of::<super::types::Problem>(&mut components);
    let mut paths = Map::new();
    for route in ROUTES {
        let Some(doc) = &route.doc else { continue };
        let op = operation(route, doc, &mut components);
        let item = paths
            .entry(route.path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(route.method.as_str().to_ascii_lowercase(), op);
        }
    }
    let schemas: Map<String, Value> = components
        .iter()
        .map(|(name, schema)| (name.clone(), value(schema)))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Edgeplane control plane API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Tenants, identity, feature flags, billing and audit events for multi-tenant B2B SaaS, served at the edge. Every error is application/problem+json (RFC 9457) whose `type` names the error and whose `code` is the specification's error id. Every response carries `X-Request-Id`.",
        },
        "servers": [{ "url": "/" }],
        "paths": paths,
        "components": {
            "securitySchemes": security_schemes(),
            "parameters": {
                "RequestId": {
                    "name": "X-Request-Id",
                    "in": "header",
                    "required": false,
                    "description": "Correlation id. Echoed when it is 1-128 characters of [A-Za-z0-9._:-]; otherwise (absent, empty or malformed) a fresh id is generated and returned instead.",
                    "schema": { "type": "string" },
                }
            },
            "headers": {
                "RequestId": {
                    "description": "The request's correlation id.",
                    "schema": { "type": "string" },
                }
            },
            "responses": {
                "Problem": {
                    "description": "An error, as RFC 9457 problem details.",
                    "headers": { "X-Request-Id": { "$ref": "#/components/headers/RequestId" } },
                    "content": {
                        "application/problem+json": {
                            "schema": { "$ref": "#/components/schemas/Problem" }
                        }
                    },
                }
            },
            "schemas": schemas,
        },
    })
}

/// The document as `openapi.json` holds it: pretty-printed, ending in a newline.
pub fn text() -> String {
    let mut s = serde_json::to_string_pretty(&document()).unwrap_or_default();
    s.push('\n');
    s
}

fn value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn schema(f: SchemaFn, components: &mut Components) -> Value {
    value(&f(components))
}

fn content(forms: &[(&str, SchemaFn)], components: &mut Components) -> Value {
    let mut out = Map::new();
    for (media, f) in forms {
        out.insert((*media).into(), json!({ "schema": schema(*f, components) }));
    }
    Value::Object(out)
}

fn operation(route: &Route, doc: &Doc, components: &mut Components) -> Value {
    let mut op = Map::new();
    op.insert("operationId".into(), doc.operation_id.into());
    op.insert("summary".into(), doc.summary.into());
    let note = caller_note(route.caller);
    let description = [note.as_str(), doc.notes]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if !description.is_empty() {
        op.insert("description".into(), description.into());
    }
    op.insert("tags".into(), json!([doc.tag]));
    op.insert("security".into(), security(route.caller));
    op.insert("parameters".into(), parameters(doc.params, components));
    if let Some(body) = &doc.body {
        op.insert(
            "requestBody".into(),
            json!({ "required": body.required, "content": content(body.content, components) }),
        );
    }
    op.insert("responses".into(), responses(doc, components));
    Value::Object(op)
}

/// The declared parameters, then `X-Request-Id`.
fn parameters(params: &[Param], components: &mut Components) -> Value {
    let mut out: Vec<Value> = params
        .iter()
        .map(|p| {
            let mut v = Map::new();
            v.insert("name".into(), p.name.into());
            let at = match p.at {
                At::Path => "path",
                At::Query => "query",
                At::Header => "header",
            };
            v.insert("in".into(), at.into());
            v.insert(
                "required".into(),
                (p.required || matches!(p.at, At::Path)).into(),
            );
            if !p.description.is_empty() {
                v.insert("description".into(), p.description.into());
            }
            v.insert("schema".into(), schema(p.schema, components));
            Value::Object(v)
        })
        .collect();
    out.push(json!({ "$ref": "#/components/parameters/RequestId" }));
    Value::Array(out)
}

/// The declared replies, then the problem statuses and `default`.
fn responses(doc: &Doc, components: &mut Components) -> Value {
    let mut out = Map::new();
    for reply in doc.replies {
        out.insert(reply.status.to_string(), response(reply, components));
    }
    let problem = json!({ "$ref": "#/components/responses/Problem" });
    for status in doc.problems {
        out.insert(status.to_string(), problem.clone());
    }
    out.insert("default".into(), problem);
    Value::Object(out)
}

fn response(reply: &Reply, components: &mut Components) -> Value {
    let mut r = Map::new();
    r.insert("description".into(), reply.description.into());
    let mut headers = Map::new();
    for h in reply.headers {
        let (name, value) = match h {
            Hdr::RequestId => (
                "X-Request-Id",
                json!({ "$ref": "#/components/headers/RequestId" }),
            ),
            Hdr::Plain {
                name,
                description,
                schema: f,
            } => {
                let mut v = Map::new();
                if !description.is_empty() {
                    v.insert("description".into(), (*description).into());
                }
                v.insert("schema".into(), schema(*f, components));
                (*name, Value::Object(v))
            }
        };
        headers.insert(name.into(), value);
    }
    if !headers.is_empty() {
        r.insert("headers".into(), Value::Object(headers));
    }
    if !reply.content.is_empty() {
        r.insert("content".into(), content(reply.content, components));
    }
    Value::Object(r)
}

fn security(caller: Caller) -> Value {
    match caller {
        Caller::Anyone | Caller::Preflight => json!([]),
        Caller::Scheduler => json!([{ "cronSecret": [] }]),
        Caller::Operator | Caller::OperatorOrAuditor => json!([{ "operatorToken": [] }]),
        Caller::AppKey(_) | Caller::Introspector => {
            json!([{ "apiKey": [] }, { "apiKeyHeader": [] }])
        }
        Caller::User | Caller::RecentUser | Caller::TenantAdmin | Caller::TenantOwner => {
            json!([{ "accessToken": [] }])
        }
        Caller::OidcClient => json!([{}, { "clientSecretBasic": [] }]),
        Caller::OidcUser => json!([{ "oidcAccessToken": [] }]),
    }
}

fn caller_note(caller: Caller) -> String {
    match caller {
        Caller::AppKey(scope) => {
            format!("Requires an API key with the `{}` scope.", scope.as_str())
        }
        Caller::Introspector => "Requires an API key with the `token:introspect` scope.".into(),
        other => fixed_caller_note(other).into(),
    }
}

fn fixed_caller_note(caller: Caller) -> &'static str {
    match caller {
        Caller::Anyone | Caller::Preflight | Caller::OidcClient | Caller::OidcUser => "",
        Caller::Scheduler => "Requires the CRON_SECRET bearer token.",
        Caller::Operator => "Requires an operator-IdP bearer token with the operator role.",
        Caller::OperatorOrAuditor => {
            "Requires an operator-IdP bearer token with the operator or auditor role."
        }
        Caller::AppKey(_) | Caller::Introspector => "",
        Caller::User => "Requires an Edgeplane access token.",
        Caller::RecentUser => "Requires an Edgeplane access token whose session signed in within the last 300 seconds (the token's `auth_time`, kept through refreshes); otherwise 403 `access-denied` with reason `reauthentication_required` and `max_age`: sign in again and retry.",
        Caller::TenantAdmin => "Requires an access token of an active owner or admin of the caller's tenant (role and status checked in the database on each call).",
        Caller::TenantOwner => "Requires an access token of the tenant's active owner (checked in the database).",
    }
}

fn security_schemes() -> Value {
    json!({
        "apiKey": { "type": "http", "scheme": "bearer", "description": "A managed app's API key (`ep_<env>_<key id>_<secret>`)." },
        "apiKeyHeader": { "type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The same API key in `X-API-Key`." },
        "cronSecret": { "type": "http", "scheme": "bearer", "description": "The CRON_SECRET configured in the environment." },
        "operatorToken": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A JWT from the operator identity provider (OPERATOR_ISSUER, OPERATOR_AUDIENCE); RS256, ES256 or EdDSA; the role claim (OPERATOR_ROLE_CLAIM, default `roles`) holds operator or auditor." },
        "accessToken": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "An Edgeplane access token (EdDSA, `kid` from /.well-known/jwks.json) from /v1/auth/login or /v1/auth/refresh." },
        "clientSecretBasic": { "type": "http", "scheme": "basic", "description": "client_secret_basic: the app id and its client secret." },
        "oidcAccessToken": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "An access token issued by /oauth/token." },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document the server serves is the one the route table and the types give.
    /// `make openapi` (UPDATE_OPENAPI=1) writes it.
    #[test]
    fn served_document_is_generated() {
        let generated = text();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/openapi/openapi.json");
            std::fs::write(path, &generated).expect("openapi.json is writable");
            return;
        }
        assert!(
            super::super::COMMITTED == generated,
            "core/src/http/openapi/openapi.json is not the generated document: run `make openapi`"
        );
    }
}
