//! Where the operator IdP's public keys come from: OIDC discovery
//! (`{issuer}/.well-known/openid-configuration` → `jwks_uri` → key set), cached in KV per issuer.
//!
//! - A cached key set is fresh for [`FRESH_MS`]; after that the next request re-fetches it. The
//!   entry itself lives [`CACHE_TTL_SECS`], so while the IdP is down a stale set keeps serving.
//! - A token naming a `kid` the fresh set lacks (the IdP rotated) triggers one re-fetch, at most
//!   once per [`REFETCH_INTERVAL_SECS`] per issuer (a marker in KV): a stream of forged kids
//!   cannot turn Edgeplane into a load generator against the IdP.
//! - With the development issuer (see [`super::config`]) the key set is the inline
//!   `OPERATOR_DEV_JWKS` and nothing is fetched or cached.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::config::{OperatorAuthConfig, Origin};
use super::jwk::{self, Alg, PublicKey};
use super::{log, OperatorAuthError};
use crate::crypto::sha256_hex;
use crate::ports::{Clock, HttpClient, Kv, OutboundRequest, Platform};

/// How long a fetched key set is used before it is fetched again, in milliseconds.
pub const FRESH_MS: i64 = 60 * 60 * 1000;
/// How long a key set stays in KV (usable, stale, while the IdP cannot be reached), in seconds.
pub const CACHE_TTL_SECS: u32 = 24 * 60 * 60;
/// Smallest interval between two re-fetches for an unknown `kid`, per issuer, in seconds
/// (also Workers KV's minimum TTL).
pub const REFETCH_INTERVAL_SECS: u32 = 60;
/// Largest discovery document or key set read, in bytes (operator and tenant SSO IdPs alike):
/// real ones are a few KiB.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// A key set as cached in KV.
#[derive(Debug, Serialize, Deserialize)]
struct CachedKeys {
    /// When it was fetched (unix ms).
    fetched_at_ms: i64,
    /// The JWK objects.
    keys: Vec<Json>,
}

/// The KV key of an issuer's cached key set (a digest: issuers may be long or odd).
fn cache_key(issuer: &str) -> String {
    format!(
        "auth:operator-jwks:{}",
        &sha256_hex(issuer.as_bytes())[..32]
    )
}

/// The KV key of an issuer's re-fetch marker.
fn refetch_key(issuer: &str) -> String {
    format!(
        "auth:operator-jwks-refetch:{}",
        &sha256_hex(issuer.as_bytes())[..32]
    )
}

/// The keys that may have signed a token with header `alg` and `kid`: never empty on `Ok`.
/// `UnsupportedAlgorithm` when the key the token names is of another algorithm; `BadSignature`
/// when no key matches even after a re-fetch.
pub async fn candidates<P: Platform>(
    p: &P,
    cfg: &OperatorAuthConfig,
    alg: Alg,
    kid: Option<&str>,
) -> Result<Vec<PublicKey>, OperatorAuthError> {
    if let Some(inline) = &cfg.dev_jwks {
        let keys = jwk::parse_jwks(inline.as_bytes()).map_err(|e| {
            log(
                p,
                "error",
                "OPERATOR_DEV_JWKS is not a key set",
                &e.to_string(),
            );
            OperatorAuthError::NotConfigured
        })?;
        return pick(&keys, alg, kid);
    }

    let now = p.clock().now_ms();
    let cached = read_cache(p, &cfg.issuer).await;
    let (keys, just_fetched) = match cached {
        Some(c) if now.saturating_sub(c.fetched_at_ms) < FRESH_MS => (c.keys, false),
        stale => match fetch_and_cache(p, cfg).await {
            Ok(keys) => (keys, true),
            Err(cause) => match stale {
                Some(c) => {
                    log(
                        p,
                        "warn",
                        "operator IdP unreachable; using its cached keys",
                        &cause,
                    );
                    // Fetching again for an unknown kid would fail the same way.
                    (c.keys, true)
                }
                None => return Err(OperatorAuthError::IssuerUnavailable(cause)),
            },
        },
    };
    match pick(&keys, alg, kid) {
        Err(OperatorAuthError::BadSignature) if !just_fetched => {}
        other => return other,
    }

    // A kid the fresh set lacks: the IdP may have rotated. Re-fetch, rate-limited per issuer.
    let marker = refetch_key(&cfg.issuer);
    match p.kv().get(&marker, None).await {
        Ok(Some(_)) => return Err(OperatorAuthError::BadSignature),
        Ok(None) => {}
        // Without the marker there is no rate limit: refuse rather than risk a fetch storm.
        Err(e) => return Err(OperatorAuthError::Storage(format!("re-fetch marker: {e}"))),
    }
    if let Err(e) = p
        .kv()
        .put(
            &marker,
            now.to_string().as_bytes(),
            Some(REFETCH_INTERVAL_SECS),
        )
        .await
    {
        return Err(OperatorAuthError::Storage(format!("re-fetch marker: {e}")));
    }
    let keys = fetch_and_cache(p, cfg)
        .await
        .map_err(OperatorAuthError::IssuerUnavailable)?;
    pick(&keys, alg, kid)
}

/// The candidates in `keys`, or why there are none.
fn pick(keys: &[Json], alg: Alg, kid: Option<&str>) -> Result<Vec<PublicKey>, OperatorAuthError> {
    let found = jwk::candidates(keys, alg, kid);
    if !found.keys.is_empty() {
        Ok(found.keys)
    } else if found.alg_mismatch {
        Err(OperatorAuthError::UnsupportedAlgorithm)
    } else {
        Err(OperatorAuthError::BadSignature)
    }
}

/// The cached key set, if any. A KV failure or an unreadable entry reads as a miss (logged):
/// the keys can always be fetched again.
async fn read_cache<P: Platform>(p: &P, issuer: &str) -> Option<CachedKeys> {
    match p.kv().get(&cache_key(issuer), None).await {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).ok(),
        Ok(None) => None,
        Err(e) => {
            log(p, "warn", "operator key cache unreadable", &e.to_string());
            None
        }
    }
}

/// Fetches the key set through discovery and caches it. The error is the cause, for the log.
async fn fetch_and_cache<P: Platform>(
    p: &P,
    cfg: &OperatorAuthConfig,
) -> Result<Vec<Json>, String> {
    let keys = fetch_keys(p, cfg).await?;
    let entry = CachedKeys {
        fetched_at_ms: p.clock().now_ms(),
        keys,
    };
    let bytes = serde_json::to_vec(&entry).map_err(|e| format!("encoding the key set: {e}"))?;
    if let Err(e) = p
        .kv()
        .put(&cache_key(&cfg.issuer), &bytes, Some(CACHE_TTL_SECS))
        .await
    {
        // Serving this request matters more than caching for the next one.
        log(p, "warn", "operator key cache not written", &e.to_string());
    }
    Ok(entry.keys)
}

/// The parts of an OpenID Provider configuration Edgeplane reads.
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// GETs the discovery document, checks it names this issuer, then GETs the key set.
async fn fetch_keys<P: Platform>(p: &P, cfg: &OperatorAuthConfig) -> Result<Vec<Json>, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        cfg.issuer.trim_end_matches('/')
    );
    let body = get_json(p, &url).await?;
    let discovery: Discovery =
        serde_json::from_slice(&body).map_err(|e| format!("discovery document at {url}: {e}"))?;
    // OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer it was
    // fetched for, exactly.
    if discovery.issuer != cfg.issuer {
        return Err(format!(
            "discovery document at {url} names issuer {:?}",
            discovery.issuer
        ));
    }
    let jwks_origin = Origin::parse(&discovery.jwks_uri)
        .ok_or_else(|| format!("jwks_uri {:?} is not an http(s) URL", discovery.jwks_uri))?;
    let allowed = jwks_origin.https || (cfg.development_issuer && jwks_origin.is_loopback());
    if !allowed {
        return Err(format!("jwks_uri {:?} is not https", discovery.jwks_uri));
    }
    let body = get_json(p, &discovery.jwks_uri).await?;
    jwk::parse_jwks(&body).map_err(|e| format!("key set at {}: {e}", discovery.jwks_uri))
}

/// GETs a JSON document: status 200 and at most [`MAX_DOCUMENT_BYTES`]. The adapter stops
/// reading at that limit; the length is checked again so that an adapter which did not cannot
/// widen it. The error (with the URL and the status or network error) is for the log.
pub(crate) async fn get_json<P: Platform>(p: &P, url: &str) -> Result<Vec<u8>, String> {
    let resp = p
        .http()
        .fetch(OutboundRequest::get(
            url,
            "application/json",
            MAX_DOCUMENT_BYTES,
        ))
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if resp.status != 200 {
        return Err(format!("GET {url}: status {}", resp.status));
    }
    if resp.body.len() > MAX_DOCUMENT_BYTES {
        return Err(format!("GET {url}: {} bytes is too large", resp.body.len()));
    }
    Ok(resp.body)
}
