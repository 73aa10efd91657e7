//! JSON request and response bodies.

use ::http::{header, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{ApiError, Request, Response};

/// True when the request says its body is JSON (`application/json` or `application/*+json`).
pub fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

/// Parses the JSON body, an object. A missing or wrong `Content-Type` is 415, malformed JSON,
/// another JSON value or a field of the wrong shape is 400 naming the problem (serde's message
/// holds no input values).
pub fn parse_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    // serde reads a struct from an array of its fields' values too; the bodies read through
    // here are objects, so an array is refused before it can be read as one.
    let first = req.body().iter().find(|b| !b.is_ascii_whitespace());
    if is_json(req) && first == Some(&b'[') {
        return Err(ApiError::invalid_input(
            "The JSON body does not have the expected shape: it must be an object.",
        ));
    }
    parse_json(req)
}

/// Parses the JSON body, any JSON value (an event batch may be an array), with the answers of
/// [`parse_body`].
pub fn parse_json<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    if !is_json(req) {
        return Err(ApiError::invalid_input(
            "The request body must be JSON (Content-Type: application/json).",
        )
        .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    serde_json::from_slice(req.body()).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "The JSON body does not have the expected shape",
            serde_json::error::Category::Eof => "The JSON body is incomplete",
            _ => "The body is not valid JSON",
        };
        ApiError::invalid_input(format!("{what}: {e}."))
    })
}

/// Parses the JSON body if there is one; an empty body gives `T::default()`.
pub fn parse_optional_body<T: DeserializeOwned + Default>(req: &Request) -> Result<T, ApiError> {
    if req.body().iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_body(req)
}

/// A JSON response with the given status.
pub fn response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| ApiError::internal(format!("serialize response: {e}")))?;
    Ok(raw(status, bytes, "application/json"))
}

/// A response with a body already serialised.
pub fn raw(status: StatusCode, bytes: Vec<u8>, content_type: &'static str) -> Response {
    let mut resp = Response::new(bytes);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// An optional integer written as any JSON number with an integral value (`3` or `3.0`, as
/// JSON Schema's `integer` allows); null is absent. For `#[serde(default, deserialize_with)]`.
pub fn opt_integral<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0)
                .map(|f| f as i64)
        })
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("must be an integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Default, Debug)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        cron: Option<String>,
    }

    fn req(ct: Option<&str>, body: &str) -> Request {
        let mut b = ::http::Request::builder().method("POST").uri("/x");
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn bodies_are_checked() {
        assert!(parse_body::<Body>(&req(Some("application/json"), r#"{"cron":"x"}"#)).is_ok());
        assert!(parse_body::<Body>(&req(
            Some("application/merge-patch+json; charset=utf-8"),
            "{}"
        ))
        .is_ok());
        let e = parse_body::<Body>(&req(Some("text/plain"), "{}")).unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let e = parse_body::<Body>(&req(Some("application/json"), r#"{"cron":"#)).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.detail.contains("JSON"), "{}", e.detail);
        let e = parse_body::<Body>(&req(Some("application/json"), r#"{"nope":1}"#)).unwrap_err();
        assert!(e.detail.contains("nope"), "{}", e.detail);
        assert!(parse_optional_body::<Body>(&req(None, "  ")).is_ok());
    }
}

#[cfg(test)]
mod integral_tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "super::opt_integral")]
        n: Option<i64>,
    }

    fn n(json: &str) -> Result<Option<i64>, serde_json::Error> {
        serde_json::from_str::<Body>(json).map(|b| b.n)
    }

    #[test]
    fn integral_numbers_are_integers_and_others_are_refused() {
        assert_eq!(n(r#"{"n": 3}"#).unwrap(), Some(3));
        assert_eq!(n(r#"{"n": 3.0}"#).unwrap(), Some(3));
        assert_eq!(n(r#"{"n": -0.0}"#).unwrap(), Some(0));
        assert_eq!(n(r#"{"n": null}"#).unwrap(), None);
        assert_eq!(n("{}").unwrap(), None);
        assert!(n(r#"{"n": 3.5}"#).is_err());
        assert!(n(r#"{"n": 1e300}"#).is_err());
        assert!(n(r#"{"n": "3"}"#).is_err());
    }
}
