//! Asking Edgeplane whether an access token is still active (`POST /oauth/introspect`,
//! RFC 7662), for the requests where a revoked session must be refused before its token
//! expires. Local verification ([`crate::TokenVerifier`]) cannot see a logout: the token stays
//! well signed until `exp` (15 minutes).
//!
//! Answers are kept per token (by its SHA-256, never the token itself) for a short time, one
//! second by default: Edgeplane's own bound for a revocation to reach every isolate of a
//! location (README, "Freshness at the edge"), so the cache adds at most that much again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::http::{Http, HttpError, Method, Request};

/// How long an answer is kept by default.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(1);
/// Most answers kept; beyond, expired ones go, then all.
const MAX_CACHED: usize = 4096;

/// What introspection said of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    /// Whether Edgeplane holds the token active now: well signed, unexpired, its session,
    /// user, tenant and app not revoked, suspended or disabled.
    pub active: bool,
    /// The session id, when active.
    pub sid: Option<String>,
    /// Whether this answer came from the cache (at most `max_age` old) rather than Edgeplane.
    pub cached: bool,
}

#[derive(Deserialize)]
struct Answer {
    active: bool,
    #[serde(default)]
    sid: Option<String>,
}

/// Why introspection gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntrospectError {
    /// No answer came.
    Http(HttpError),
    /// Edgeplane refused the call (401 key, 403 scope `token:introspect` missing, 5xx).
    Status {
        /// The HTTP status.
        status: u16,
        /// The answer's body, as text.
        body: String,
    },
    /// The answer was not RFC 7662's.
    Unreadable(String),
}

impl fmt::Display for IntrospectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(e) => write!(f, "{e}"),
            Self::Status { status, body } => write!(f, "Edgeplane answered {status}: {body:.300}"),
            Self::Unreadable(why) => write!(f, "unreadable introspection answer: {why}"),
        }
    }
}

impl std::error::Error for IntrospectError {}

/// Introspects tokens with an API key holding `token:introspect`; keeps answers for
/// `max_age`, so make one per process (or Worker isolate) and reuse it.
pub struct Introspector<H> {
    http: H,
    url: String,
    api_key: String,
    max_age_ms: u64,
    /// By the token's SHA-256: until when (Unix ms) the answer holds, and the answer.
    cache: RefCell<HashMap<[u8; 32], (u64, Introspection)>>,
}

impl<H> fmt::Debug for Introspector<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspector")
            .field("url", &self.url)
            .field("max_age_ms", &self.max_age_ms)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "native")]
impl Introspector<crate::http::NativeHttp> {
    /// An introspector of the Edgeplane at `base_url`, with an API key holding
    /// `token:introspect`.
    pub fn new(base_url: &str, api_key: &str) -> Self {
        Self::with_http(crate::http::NativeHttp::default(), base_url, api_key)
    }
}

impl<H: Http> Introspector<H> {
    /// An introspector that sends through `http`.
    pub fn with_http(http: H, base_url: &str, api_key: &str) -> Self {
        Self {
            http,
            url: format!("{}/oauth/introspect", crate::trim_base(base_url)),
            api_key: api_key.to_owned(),
            max_age_ms: duration_ms(DEFAULT_MAX_AGE),
            cache: RefCell::new(HashMap::new()),
        }
    }

    /// Keeps answers for `max_age` instead of 1 s; zero asks Edgeplane every time.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age_ms = duration_ms(max_age);
        self
    }

    /// Whether `token` is active, from an answer at most `max_age` old at `now_unix_millis`
    /// (give [`crate::Clock::now_unix_millis`]), else from Edgeplane.
    pub async fn introspect(
        &self,
        token: &str,
        now_unix_millis: u64,
    ) -> Result<Introspection, IntrospectError> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((until, answer)) = self.cache.borrow().get(&hash) {
            if now_unix_millis < *until {
                return Ok(Introspection {
                    cached: true,
                    ..answer.clone()
                });
            }
        }
        let body = serde_json::json!({ "token": token })
            .to_string()
            .into_bytes();
        let req = Request::new(Method::Post, &self.url)
            .header("authorization", format!("Bearer {}", self.api_key))
            .header("accept", "application/json")
            .json(body);
        let resp = self.http.send(req).await.map_err(IntrospectError::Http)?;
        if resp.status != 200 {
            return Err(IntrospectError::Status {
                status: resp.status,
                body: String::from_utf8_lossy(&resp.body).into_owned(),
            });
        }
        let answer: Answer = serde_json::from_slice(&resp.body)
            .map_err(|e| IntrospectError::Unreadable(e.to_string()))?;
        let answer = Introspection {
            active: answer.active,
            sid: answer.sid.filter(|_| answer.active),
            cached: false,
        };
        if self.max_age_ms > 0 {
            self.remember(hash, now_unix_millis, answer.clone());
        }
        Ok(answer)
    }

    fn remember(&self, hash: [u8; 32], now: u64, answer: Introspection) {
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= MAX_CACHED && !cache.contains_key(&hash) {
            cache.retain(|_, (until, _)| now < *until);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(hash, (now.saturating_add(self.max_age_ms), answer));
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
