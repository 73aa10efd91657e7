//! The tenant IdP's OpenID Provider metadata (OpenID Connect Discovery 1.0) and key set, fetched
//! through the HttpClient port. Every URL Edgeplane fetches or redirects to must be on the
//! configured issuer's origin (scheme, host and port): a discovery document cannot send
//! Edgeplane's outbound requests, or the client secret, anywhere else (FR-AUTH-003).
//!
//! Sign-ins reuse the checked metadata and the key set from KV for [`CACHE_TTL_SECS`]; saving a
//! configuration always fetches afresh (and refreshes the cache), and an ID token no cached key
//! verifies makes the callback fetch the key set once more (the IdP rotated its keys).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::auth::config::Origin;
use crate::auth::jwk;
use crate::auth::keys::get_json;
use crate::crypto::sha256_hex;
use crate::ports::{Kv, Platform};

/// How long sign-ins reuse a provider's metadata and key set.
pub const CACHE_TTL_SECS: u32 = 3600;

/// The KV key of a cached document of `kind` fetched for `url`.
fn cache_key(kind: &str, url: &str) -> String {
    format!("sso:{kind}:{}", sha256_hex(url.as_bytes()))
}

/// Longest issuer URL accepted (it is stored and compared to `iss`).
pub const MAX_ISSUER_LEN: usize = 512;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    /// HTTP Basic with client id and secret (the OIDC default).
    ClientSecretBasic,
    /// Client id and secret in the form body.
    ClientSecretPost,
}

/// What Edgeplane uses of a provider's metadata, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    /// The issuer, exactly as configured and as in `iss`.
    pub issuer: String,
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// The provider's key set.
    pub jwks_uri: String,
    /// The token endpoint authentication Edgeplane uses.
    pub token_auth: TokenAuth,
}

/// Why a provider cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// The document or the key set could not be fetched (network, status, size): the cause.
    #[error("{0}")]
    Unreachable(String),
    /// The provider answered with something Edgeplane cannot use: what is wrong.
    #[error("{0}")]
    Unusable(String),
}

/// `scheme://authority` of an issuer URL, lowercase: `https://`, or `http://` to a loopback host
/// when `development` (EDGEPLANE_ENV=development), as for the operator IdP. The error says why
/// the URL is refused.
pub fn issuer_origin(issuer: &str, development: bool) -> Result<String, &'static str> {
    if issuer.len() > MAX_ISSUER_LEN || issuer.contains(['?', '#']) {
        return Err("must be a URL without query or fragment, at most 512 characters");
    }
    let origin = origin_of(issuer).ok_or("must be an absolute https:// URL")?;
    let parsed = Origin::parse(issuer).ok_or("must be an absolute https:// URL")?;
    let allowed = parsed.https || (development && parsed.is_loopback());
    if !allowed {
        return Err("must be https:// (http:// only to a loopback host in development)");
    }
    Ok(origin)
}

/// `scheme://authority` of an absolute http(s) URL, lowercase; `None` if it is not one.
pub fn origin_of(url: &str) -> Option<String> {
    Origin::parse(url)?;
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!("{}://{}", scheme, authority).to_ascii_lowercase())
}

/// Whether `url` is on `origin` (the issuer's).
fn on_origin(url: &str, origin: &str) -> bool {
    origin_of(url).as_deref() == Some(origin)
}

/// The members of a provider configuration Edgeplane reads.
#[derive(Debug, Deserialize)]
struct RawMetadata {
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    #[serde(default)]
    response_types_supported: Option<Vec<Json>>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<Json>>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<Json>>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Option<Vec<Json>>,
}

fn lists(values: &Option<Vec<Json>>, wanted: &str) -> bool {
    values
        .as_ref()
        .is_some_and(|v| v.iter().any(|x| x.as_str() == Some(wanted)))
}

/// Fetches `{issuer}/.well-known/openid-configuration` and checks it: it names this issuer
/// exactly; authorization, token and JWKS endpoints are present and on the issuer's origin; the
/// code flow, PKCE S256, RS256 or ES256 ID tokens and a client-secret authentication Edgeplane
/// speaks are supported.
pub async fn discover<P: Platform>(
    p: &P,
    issuer: &str,
    development: bool,
) -> Result<ProviderMetadata, DiscoveryError> {
    let origin = issuer_origin(issuer, development)
        .map_err(|why| DiscoveryError::Unusable(format!("issuer_url {why}")))?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let body = get_json(p, &url)
        .await
        .map_err(|cause| DiscoveryError::Unreachable(format!("discovery document: {cause}")))?;
    let raw: RawMetadata = serde_json::from_slice(&body).map_err(|_| {
        DiscoveryError::Unusable(format!("discovery document at {url} is not a JSON object"))
    })?;
    let unusable = |what: String| DiscoveryError::Unusable(what);
    // OpenID Connect Discovery 1.0, section 4.3: the issuer must be exactly the one asked for.
    match raw.issuer.as_deref() {
        Some(named) if named == issuer => {}
        Some(named) => {
            return Err(unusable(format!(
                "discovery document names issuer {named:?}, not {issuer:?}"
            )))
        }
        None => return Err(unusable("discovery document has no issuer".to_owned())),
    }
    let endpoint = |name: &str, value: Option<String>| -> Result<String, DiscoveryError> {
        let value = value.ok_or_else(|| unusable(format!("discovery document has no {name}")))?;
        if !on_origin(&value, &origin) {
            return Err(unusable(format!(
                "{name} {value:?} is not on the issuer's origin {origin}"
            )));
        }
        Ok(value)
    };
    let authorization_endpoint = endpoint("authorization_endpoint", raw.authorization_endpoint)?;
    let token_endpoint = endpoint("token_endpoint", raw.token_endpoint)?;
    let jwks_uri = endpoint("jwks_uri", raw.jwks_uri)?;
    if !lists(&raw.response_types_supported, "code") {
        return Err(unusable(
            "response_types_supported does not list the code flow".to_owned(),
        ));
    }
    if !lists(&raw.code_challenge_methods_supported, "S256") {
        return Err(unusable(
            "code_challenge_methods_supported does not list PKCE S256".to_owned(),
        ));
    }
    // Absent means RS256 (Discovery 1.0 requires RS256 support).
    if raw.id_token_signing_alg_values_supported.is_some()
        && !lists(&raw.id_token_signing_alg_values_supported, "RS256")
        && !lists(&raw.id_token_signing_alg_values_supported, "ES256")
    {
        return Err(unusable(
            "id_token_signing_alg_values_supported lists neither RS256 nor ES256".to_owned(),
        ));
    }
    // Absent means client_secret_basic (Discovery 1.0, section 3).
    let token_auth = match &raw.token_endpoint_auth_methods_supported {
        None => TokenAuth::ClientSecretBasic,
        Some(_) if lists(&raw.token_endpoint_auth_methods_supported, "client_secret_basic") => {
            TokenAuth::ClientSecretBasic
        }
        Some(_) if lists(&raw.token_endpoint_auth_methods_supported, "client_secret_post") => {
            TokenAuth::ClientSecretPost
        }
        Some(_) => {
            return Err(unusable(
                "token_endpoint_auth_methods_supported lists neither client_secret_basic nor client_secret_post"
                    .to_owned(),
            ))
        }
    };
    let meta = ProviderMetadata {
        issuer: issuer.to_owned(),
        authorization_endpoint,
        token_endpoint,
        jwks_uri,
        token_auth,
    };
    // A cache: a failed write only costs the next sign-in a fetch.
    if let Ok(json) = serde_json::to_vec(&meta) {
        let _ = p
            .kv()
            .put(&cache_key("meta", issuer), &json, Some(CACHE_TTL_SECS))
            .await;
    }
    Ok(meta)
}

/// [`discover`], from KV when it succeeded within [`CACHE_TTL_SECS`] (sign-in start).
pub async fn discover_cached<P: Platform>(
    p: &P,
    issuer: &str,
    development: bool,
) -> Result<ProviderMetadata, DiscoveryError> {
    if let Ok(Some(bytes)) = p.kv().get(&cache_key("meta", issuer), None).await {
        if let Ok(meta) = serde_json::from_slice::<ProviderMetadata>(&bytes) {
            if meta.issuer == issuer {
                return Ok(meta);
            }
        }
    }
    discover(p, issuer, development).await
}

/// The provider's key set from KV when fetched within [`CACHE_TTL_SECS`], else fetched; `true`
/// when it came from the cache (and may be older than a key rotation).
pub async fn keys_cached<P: Platform>(
    p: &P,
    issuer: &str,
    jwks_uri: &str,
) -> Result<(Vec<Json>, bool), DiscoveryError> {
    jwks_on_issuer_origin(issuer, jwks_uri)?;
    if let Ok(Some(bytes)) = p.kv().get(&cache_key("jwks", jwks_uri), None).await {
        if let Ok(keys) = jwk::parse_jwks(&bytes) {
            return Ok((keys, true));
        }
    }
    Ok((fetch_keys(p, issuer, jwks_uri).await?, false))
}

fn jwks_on_issuer_origin(issuer: &str, jwks_uri: &str) -> Result<(), DiscoveryError> {
    let origin = origin_of(issuer)
        .ok_or_else(|| DiscoveryError::Unusable("issuer_url is not a URL".to_owned()))?;
    if !on_origin(jwks_uri, &origin) {
        return Err(DiscoveryError::Unusable(format!(
            "jwks_uri {jwks_uri:?} is not on the issuer's origin {origin}"
        )));
    }
    Ok(())
}

/// Fetches the provider's key set from `jwks_uri`, which must be on `issuer`'s origin.
pub async fn fetch_keys<P: Platform>(
    p: &P,
    issuer: &str,
    jwks_uri: &str,
) -> Result<Vec<Json>, DiscoveryError> {
    jwks_on_issuer_origin(issuer, jwks_uri)?;
    let body = get_json(p, jwks_uri)
        .await
        .map_err(|cause| DiscoveryError::Unreachable(format!("key set: {cause}")))?;
    let keys = jwk::parse_jwks(&body)
        .map_err(|e| DiscoveryError::Unusable(format!("key set at {jwks_uri}: {e}")))?;
    let _ = p
        .kv()
        .put(&cache_key("jwks", jwks_uri), &body, Some(CACHE_TTL_SECS))
        .await;
    Ok(keys)
}

/// Whether a key set holds at least one RS256 or ES256 key Edgeplane can use.
pub fn has_usable_key(keys: &[Json]) -> bool {
    [jwk::Alg::Rs256, jwk::Alg::Es256]
        .into_iter()
        .any(|alg| !jwk::candidates(keys, alg, None).keys.is_empty())
}
