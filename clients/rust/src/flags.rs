//! Flags over OpenFeature's remote evaluation protocol (OFREP): every flag of a tenant
//! evaluated for a context in one request (`POST /ofrep/v1/evaluate/flags`), cached with its
//! `ETag`, so asking again for the same context costs a 304 and no evaluation.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::http::{Http, HttpError, Method, Request};

/// Most contexts whose evaluations are kept; beyond, the cache starts over.
const MAX_CACHED_CONTEXTS: usize = 256;

/// One flag's evaluation, as OFREP gives it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FlagEvaluation {
    /// The flag key.
    pub key: String,
    /// The value; absent for a disabled flag (the caller's default applies) or an error.
    #[serde(default)]
    pub value: Option<Value>,
    /// Why this value (`TARGETING_MATCH`, `DEFAULT`, `DISABLED`, ...).
    #[serde(default)]
    pub reason: Option<String>,
    /// The variant's name, when the flag has variants.
    #[serde(default)]
    pub variant: Option<String>,
    /// OFREP's error code, when the flag could not be evaluated for the context.
    #[serde(default, rename = "errorCode")]
    pub error_code: Option<String>,
    /// What the error is about.
    #[serde(default, rename = "errorDetails")]
    pub error_details: Option<String>,
}

#[derive(Deserialize)]
struct Bulk {
    flags: Vec<FlagEvaluation>,
}

/// Every flag of the tenant evaluated for one context.
#[derive(Debug, Clone, PartialEq)]
pub struct Flags {
    flags: HashMap<String, FlagEvaluation>,
    not_modified: bool,
}

impl Flags {
    /// The evaluation of `key`, if the tenant has that flag.
    pub fn get(&self, key: &str) -> Option<&FlagEvaluation> {
        self.flags.get(key)
    }

    /// The flag keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.flags.keys().map(String::as_str)
    }

    /// `key`'s value if it is a boolean, else `default` (unknown, disabled, error, other type).
    pub fn bool_flag(&self, key: &str, default: bool) -> bool {
        self.value(key).and_then(Value::as_bool).unwrap_or(default)
    }

    /// `key`'s value if it is a string, else `default`.
    pub fn string_flag<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.value(key).and_then(Value::as_str).unwrap_or(default)
    }

    /// `key`'s value if it is a number, else `default`.
    pub fn number_flag(&self, key: &str, default: f64) -> f64 {
        self.value(key).and_then(Value::as_f64).unwrap_or(default)
    }

    /// Whether Edgeplane answered 304 and these are the cached evaluations.
    pub fn not_modified(&self) -> bool {
        self.not_modified
    }

    fn value(&self, key: &str) -> Option<&Value> {
        self.flags.get(key)?.value.as_ref()
    }
}

/// Why flags could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagsError {
    /// No answer came.
    Http(HttpError),
    /// Edgeplane refused the request (401 key, 403 scope, 400 context, 429, 5xx), with the body.
    Status {
        /// The HTTP status.
        status: u16,
        /// The answer's body (problem details or OFREP's error), as text.
        body: String,
    },
    /// The answer was not OFREP's bulk response, or a 304 came for a context never fetched.
    Unreadable(String),
}

impl fmt::Display for FlagsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(e) => write!(f, "{e}"),
            Self::Status { status, body } => write!(f, "Edgeplane answered {status}: {body:.300}"),
            Self::Unreadable(why) => write!(f, "unreadable OFREP answer: {why}"),
        }
    }
}

impl std::error::Error for FlagsError {}

/// Evaluates a managed app's flags with its API key (`flags:read`); keeps each context's last
/// evaluations and `ETag`, so make one and reuse it.
pub struct FlagsClient<H> {
    http: H,
    url: String,
    api_key: String,
    /// By the context's JSON: the `ETag` and the evaluations it tags.
    cache: RefCell<HashMap<String, (String, Flags)>>,
}

impl<H> fmt::Debug for FlagsClient<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlagsClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "native")]
impl FlagsClient<crate::http::NativeHttp> {
    /// A client of the Edgeplane at `base_url` (no `/ofrep`), with the app's API key.
    pub fn new(base_url: &str, api_key: &str) -> Self {
        Self::with_http(crate::http::NativeHttp::default(), base_url, api_key)
    }
}

impl<H: Http> FlagsClient<H> {
    /// A client that sends through `http`.
    pub fn with_http(http: H, base_url: &str, api_key: &str) -> Self {
        Self {
            http,
            url: format!("{}/ofrep/v1/evaluate/flags", crate::trim_base(base_url)),
            api_key: api_key.to_owned(),
            cache: RefCell::new(HashMap::new()),
        }
    }

    /// Every flag of the tenant evaluated for `context` (OFREP's evaluation context: with an
    /// app-wide key it names the tenant as `tenantId`; `targetingKey` and any attribute the
    /// rules use). Sends the cached `ETag` of the same context as `If-None-Match`, and answers
    /// the cached evaluations on 304.
    pub async fn evaluate_all(&self, context: &Map<String, Value>) -> Result<Flags, FlagsError> {
        // serde_json's map keeps keys sorted, so equal contexts serialize alike.
        let context_json = Value::Object(context.clone()).to_string();
        let body = format!(r#"{{"context":{context_json}}}"#).into_bytes();
        let mut req = Request::new(Method::Post, &self.url)
            .header("authorization", format!("Bearer {}", self.api_key))
            .header("accept", "application/json");
        if let Some((etag, _)) = self.cache.borrow().get(&context_json) {
            req = req.header("if-none-match", etag.clone());
        }
        let resp = self
            .http
            .send(req.json(body))
            .await
            .map_err(FlagsError::Http)?;
        if resp.status == 304 {
            let cached = self
                .cache
                .borrow()
                .get(&context_json)
                .map(|(_, f)| f.clone());
            let mut flags = cached.ok_or_else(|| {
                FlagsError::Unreadable("304 for a context with nothing cached".into())
            })?;
            flags.not_modified = true;
            return Ok(flags);
        }
        if resp.status != 200 {
            return Err(FlagsError::Status {
                status: resp.status,
                body: String::from_utf8_lossy(&resp.body).into_owned(),
            });
        }
        let bulk: Bulk = serde_json::from_slice(&resp.body)
            .map_err(|e| FlagsError::Unreadable(e.to_string()))?;
        let flags = Flags {
            flags: bulk.flags.into_iter().map(|f| (f.key.clone(), f)).collect(),
            not_modified: false,
        };
        if let Some(etag) = resp.header("etag") {
            let mut cache = self.cache.borrow_mut();
            if cache.len() >= MAX_CACHED_CONTEXTS && !cache.contains_key(&context_json) {
                cache.clear();
            }
            cache.insert(context_json, (etag.to_owned(), flags.clone()));
        }
        Ok(flags)
    }
}
