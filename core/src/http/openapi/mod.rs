//! The OpenAPI 3.1 document served at `/openapi.json`, generated ([`generate`]) from the route
//! table and the request and response types, committed as `openapi.json` (`make openapi`) and
//! served as is. A unit test fails when the two differ; schemathesis holds the document to the
//! running server (`make test`). Development-only routes (`/__dev/`) and the scheduler's
//! `/internal/` route declare no document part and are not in it.

/// The document as served: `openapi.json` without its indentation (`build.rs`).
pub const DOCUMENT: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// The document as committed, pretty-printed.
#[cfg(test)]
pub(crate) const COMMITTED: &str = include_str!("openapi.json");

#[cfg(not(target_family = "wasm"))]
pub mod decl;
#[cfg(not(target_family = "wasm"))]
pub mod generate;
#[cfg(not(target_family = "wasm"))]
pub mod types;

/// Whether a route belongs in the public document.
pub fn is_public(path: &str) -> bool {
    !path.starts_with("/__dev/") && !path.starts_with("/internal/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::problem::ProblemType;
    use crate::http::router::ROUTES;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn doc() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
    }

    #[test]
    fn document_and_router_list_the_same_operations() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                assert!(
                    op["operationId"].is_string(),
                    "{method} {path} has no operationId"
                );
                assert!(
                    op["responses"].is_object(),
                    "{method} {path} has no responses"
                );
                assert!(
                    op["responses"]["default"].is_object(),
                    "{method} {path} does not document its problem responses"
                );
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let routed: BTreeSet<_> = ROUTES
            .iter()
            .filter(|r| is_public(r.path))
            .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
            .collect();
        assert_eq!(documented, routed, "openapi.json and router::ROUTES differ");
    }

    #[test]
    fn operation_ids_are_unique_and_refs_resolve() {
        let doc = doc();
        let mut ids = BTreeSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                if let Some(id) = op["operationId"].as_str() {
                    assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
                }
            }
        }
        fn walk(v: &Value, doc: &Value) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        let ptr = r.strip_prefix('#').expect("local ref");
                        assert!(doc.pointer(ptr).is_some(), "dangling $ref {r}");
                    }
                    m.values().for_each(|x| walk(x, doc));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, doc)),
                _ => {}
            }
        }
        walk(&doc, &doc);
    }

    #[test]
    fn problem_schema_lists_every_problem_type() {
        let doc = doc();
        let listed: BTreeSet<String> = doc["components"]["schemas"]["Problem"]["properties"]
            ["type"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let known: BTreeSet<String> = ProblemType::ALL.iter().map(|t| t.uri()).collect();
        assert_eq!(listed, known);
    }
}
