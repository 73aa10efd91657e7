//! The tenant IdP's OpenID Provider metadata (OpenID Connect Discovery 1.0) and key set, fetched
//! through the HttpClient port. Every URL Edgeplane fetches or redirects to must be on the
//! configured issuer's origin (scheme, host and port): a discovery document cannot send
//! Edgeplane's outbound requests, or the client secret, anywhere else (FR-AUTH-003).
//!
//! The owner chooses that origin, so each URL must also pass [`destination`] where it is
//! fetched, not only where it is saved: https to a public host ([`crate::net`]), never loopback,
//! private, link-local or other internal addresses (server-side request forgery). What the owner
//! is told when discovery fails is Edgeplane's own words; the provider's status, body and the
//! network error only reach the log ([`DiscoveryError::cause`]), or the check would report
//! what answers where. Documents are read up to
//! [`MAX_DOCUMENT_BYTES`](crate::auth::keys::MAX_DOCUMENT_BYTES) (64 KiB), a cap the HTTP
//! adapters enforce while reading.
//!
//! Sign-ins reuse the checked metadata and the key set from KV for [`CACHE_TTL_SECS`]; saving a
//! configuration always fetches afresh (and refreshes the cache), and an ID token no cached key
//! verifies makes the callback fetch the key set once more (the IdP rotated its keys).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::auth::config::Origin;
use crate::auth::jwk;
use crate::auth::keys::get_json;
use crate::crypto::sha256_hex;
use crate::net;
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

/// One of the provider's documents, as named to the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// `{issuer}/.well-known/openid-configuration`.
    Discovery,
    /// The JWK set at `jwks_uri`.
    KeySet,
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Document::Discovery => "discovery document",
            Document::KeySet => "key set",
        })
    }
}

/// Why a provider cannot be used. The message (`Display`) is safe to show the owner: it never
/// carries the provider's status, body or values, nor a network error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// A document could not be fetched (network, status, size, the runtime's refusal). Only the
    /// document is named; `cause` is for the log.
    #[error("the issuer's {document} could not be fetched")]
    Unreachable {
        /// Which document.
        document: Document,
        /// The status or network error, for the log only.
        cause: String,
    },
    /// The provider's answer, or a URL Edgeplane would use, cannot be used: what is wrong, in
    /// Edgeplane's words (built from literals, never from the provider's text).
    #[error("{0}")]
    Unusable(String),
}

impl DiscoveryError {
    /// What went wrong upstream, for the log only (never for the caller).
    pub fn cause(&self) -> Option<&str> {
        match self {
            DiscoveryError::Unreachable { cause, .. } => Some(cause),
            DiscoveryError::Unusable(_) => None,
        }
    }

    /// The message with its cause, for a log line.
    pub fn log_detail(&self) -> String {
        match self.cause() {
            Some(cause) => format!("{self}: {cause}"),
            None => self.to_string(),
        }
    }
}

/// `scheme://authority` of an issuer URL, lowercase, if it passes [`destination`]. The error
/// says why the URL is refused.
pub fn issuer_origin(issuer: &str, development: bool) -> Result<String, &'static str> {
    if issuer.len() > MAX_ISSUER_LEN || issuer.contains(['?', '#']) {
        return Err("must be a URL without query or fragment, at most 512 characters");
    }
    let origin = origin_of(issuer).ok_or("must be an absolute https:// URL")?;
    destination(issuer, development)?;
    Ok(origin)
}

/// Whether Edgeplane may send a request (or a browser) to `url`: `https://` to a public host
/// ([`net::is_public_host`]). In development (EDGEPLANE_ENV=development) a loopback host
/// (`localhost`, `127.0.0.1`, `[::1]`) is allowed too, over http or https, as for the operator
/// IdP: the contract suite runs its IdP there. No other internal destination, in any mode. The
/// error says why not, fit for the owner.
pub fn destination(url: &str, development: bool) -> Result<(), &'static str> {
    let parsed = Origin::parse(url).ok_or("must be an absolute https:// URL")?;
    if development && parsed.is_loopback() {
        return Ok(());
    }
    if !parsed.https {
        return Err("must be https:// (http:// only to a loopback host in development)");
    }
    if !net::is_public_host(&parsed.host) {
        return Err(
            "must name a public host, not a loopback, private, link-local or other internal address or name",
        );
    }
    Ok(())
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

/// GETs one of the provider's documents at `url`, which must pass [`destination`] here, where
/// it is fetched, whatever was checked before.
async fn fetch_document<P: Platform>(
    p: &P,
    url: &str,
    document: Document,
    development: bool,
) -> Result<Vec<u8>, DiscoveryError> {
    destination(url, development)
        .map_err(|why| DiscoveryError::Unusable(format!("the URL of the {document} {why}")))?;
    get_json(p, url)
        .await
        .map_err(|cause| DiscoveryError::Unreachable { document, cause })
}

/// Checks an endpoint of the provider: on the issuer's `origin` and a [`destination`].
fn endpoint(name: &str, value: &str, origin: &str, development: bool) -> Result<(), String> {
    if !on_origin(value, origin) {
        return Err(format!(
            "the discovery document's {name} is not on the issuer's origin"
        ));
    }
    destination(value, development).map_err(|why| format!("the discovery document's {name} {why}"))
}

/// Fetches `{issuer}/.well-known/openid-configuration` and checks it: it names this issuer
/// exactly; authorization, token and JWKS endpoints are present, on the issuer's origin and
/// allowed destinations; the code flow, PKCE S256, RS256 or ES256 ID tokens and a client-secret
/// authentication Edgeplane speaks are supported.
pub async fn discover<P: Platform>(
    p: &P,
    issuer: &str,
    development: bool,
) -> Result<ProviderMetadata, DiscoveryError> {
    let meta = discover_accepting(p, issuer, development, TENANT_ID_TOKEN_ALGS).await?;
    // A cache: a failed write only costs the next sign-in a fetch.
    if let Ok(json) = serde_json::to_vec(&meta) {
        let _ = p
            .kv()
            .put(&cache_key("meta", issuer), &json, Some(CACHE_TTL_SECS))
            .await;
    }
    Ok(meta)
}

/// The ID token algorithms a tenant's IdP must offer (one of them): what the SSO sign-in
/// verifies ([`super::id_token`]).
pub const TENANT_ID_TOKEN_ALGS: &[&str] = &["RS256", "ES256"];

/// [`discover`] for a provider whose ID tokens are verified with any of `id_token_algs`
/// (absent from the document means RS256), without the cache.
pub async fn discover_accepting<P: Platform>(
    p: &P,
    issuer: &str,
    development: bool,
    id_token_algs: &[&str],
) -> Result<ProviderMetadata, DiscoveryError> {
    let origin = issuer_origin(issuer, development)
        .map_err(|why| DiscoveryError::Unusable(format!("issuer_url {why}")))?;
    let raw = fetch_metadata(p, issuer, development).await?;
    checked_metadata(raw, issuer, &origin, development, id_token_algs)
}

/// Fetches `issuer`'s discovery document and reads the members Edgeplane uses.
async fn fetch_metadata<P: Platform>(
    p: &P,
    issuer: &str,
    development: bool,
) -> Result<RawMetadata, DiscoveryError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let body = fetch_document(p, &url, Document::Discovery, development).await?;
    serde_json::from_slice(&body).map_err(|_| {
        DiscoveryError::Unusable("the discovery document is not a JSON object".to_owned())
    })
}

/// The metadata of `raw` that Edgeplane uses, once every rule of [`discover`] holds; the first
/// rule broken is the error.
fn checked_metadata(
    raw: RawMetadata,
    issuer: &str,
    origin: &str,
    development: bool,
    id_token_algs: &[&str],
) -> Result<ProviderMetadata, DiscoveryError> {
    check_named_issuer(raw.issuer.as_deref(), issuer)?;
    let checked =
        |name: &str, value: Option<String>| checked_endpoint(name, value, origin, development);
    let authorization_endpoint = checked("authorization_endpoint", raw.authorization_endpoint)?;
    let token_endpoint = checked("token_endpoint", raw.token_endpoint)?;
    let jwks_uri = checked("jwks_uri", raw.jwks_uri)?;
    check_flow_support(
        &raw.response_types_supported,
        &raw.code_challenge_methods_supported,
        &raw.id_token_signing_alg_values_supported,
        id_token_algs,
    )?;
    let token_auth = token_auth_of(&raw.token_endpoint_auth_methods_supported)?;
    Ok(ProviderMetadata {
        issuer: issuer.to_owned(),
        authorization_endpoint,
        token_endpoint,
        jwks_uri,
        token_auth,
    })
}

/// OpenID Connect Discovery 1.0, section 4.3: the issuer `named` must be exactly the one asked
/// for. The name it gives instead is not repeated: it is the provider's text.
fn check_named_issuer(named: Option<&str>, issuer: &str) -> Result<(), DiscoveryError> {
    match named {
        Some(named) if named == issuer => Ok(()),
        Some(_) => Err(DiscoveryError::Unusable(
            "the discovery document names another issuer; it must name issuer_url exactly"
                .to_owned(),
        )),
        None => Err(DiscoveryError::Unusable(
            "the discovery document has no issuer".to_owned(),
        )),
    }
}

/// The endpoint `name` of the discovery document: present, and passing [`endpoint`].
fn checked_endpoint(
    name: &str,
    value: Option<String>,
    origin: &str,
    development: bool,
) -> Result<String, DiscoveryError> {
    let value = value
        .ok_or_else(|| DiscoveryError::Unusable(format!("the discovery document has no {name}")))?;
    endpoint(name, &value, origin, development).map_err(DiscoveryError::Unusable)?;
    Ok(value)
}

/// The provider supports the code flow, PKCE S256, and RS256 or ES256 ID tokens.
fn check_flow_support(
    response_types: &Option<Vec<Json>>,
    pkce_methods: &Option<Vec<Json>>,
    id_token_algs: &Option<Vec<Json>>,
    accepted: &[&str],
) -> Result<(), DiscoveryError> {
    if !lists(response_types, "code") {
        return Err(DiscoveryError::Unusable(
            "response_types_supported does not list the code flow".to_owned(),
        ));
    }
    if !lists(pkce_methods, "S256") {
        return Err(DiscoveryError::Unusable(
            "code_challenge_methods_supported does not list PKCE S256".to_owned(),
        ));
    }
    // Absent means RS256 (Discovery 1.0 requires RS256 support).
    let offered = match id_token_algs {
        None => accepted.contains(&"RS256"),
        Some(_) => accepted.iter().any(|alg| lists(id_token_algs, alg)),
    };
    if !offered {
        return Err(DiscoveryError::Unusable(format!(
            "id_token_signing_alg_values_supported lists none of {}",
            accepted.join(", ")
        )));
    }
    Ok(())
}

/// The token endpoint authentication Edgeplane uses, from the `methods` the provider lists:
/// client_secret_basic when listed (or nothing is listed), else client_secret_post.
fn token_auth_of(methods: &Option<Vec<Json>>) -> Result<TokenAuth, DiscoveryError> {
    // Absent means client_secret_basic (Discovery 1.0, section 3).
    match methods {
        None => Ok(TokenAuth::ClientSecretBasic),
        Some(_) if lists(methods, "client_secret_basic") => Ok(TokenAuth::ClientSecretBasic),
        Some(_) if lists(methods, "client_secret_post") => Ok(TokenAuth::ClientSecretPost),
        Some(_) => Err(DiscoveryError::Unusable(
            "token_endpoint_auth_methods_supported lists neither client_secret_basic nor client_secret_post"
                .to_owned(),
        )),
    }
}

/// [`discover`], from KV when it succeeded within [`CACHE_TTL_SECS`] (sign-in start). The
/// issuer and the cached endpoints are checked again: a configuration or a cache entry written
/// before the destination rule existed must not bypass it.
pub async fn discover_cached<P: Platform>(
    p: &P,
    issuer: &str,
    development: bool,
) -> Result<ProviderMetadata, DiscoveryError> {
    let origin = issuer_origin(issuer, development)
        .map_err(|why| DiscoveryError::Unusable(format!("issuer_url {why}")))?;
    if let Ok(Some(bytes)) = p.kv().get(&cache_key("meta", issuer), None).await {
        if let Ok(meta) = serde_json::from_slice::<ProviderMetadata>(&bytes) {
            let usable = meta.issuer == issuer
                && [
                    ("authorization_endpoint", &meta.authorization_endpoint),
                    ("token_endpoint", &meta.token_endpoint),
                    ("jwks_uri", &meta.jwks_uri),
                ]
                .into_iter()
                .all(|(name, url)| endpoint(name, url, &origin, development).is_ok());
            if usable {
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
    development: bool,
) -> Result<(Vec<Json>, bool), DiscoveryError> {
    jwks_allowed(issuer, jwks_uri, development)?;
    if let Ok(Some(bytes)) = p.kv().get(&cache_key("jwks", jwks_uri), None).await {
        if let Ok(keys) = jwk::parse_jwks(&bytes) {
            return Ok((keys, true));
        }
    }
    Ok((fetch_keys(p, issuer, jwks_uri, development).await?, false))
}

/// `jwks_uri` is on the origin of `issuer`, and both are allowed destinations.
fn jwks_allowed(issuer: &str, jwks_uri: &str, development: bool) -> Result<(), DiscoveryError> {
    let origin = issuer_origin(issuer, development)
        .map_err(|why| DiscoveryError::Unusable(format!("issuer_url {why}")))?;
    endpoint("jwks_uri", jwks_uri, &origin, development).map_err(DiscoveryError::Unusable)
}

/// Fetches the provider's key set from `jwks_uri`, which must be on `issuer`'s origin and, like
/// the issuer, an allowed [`destination`].
pub async fn fetch_keys<P: Platform>(
    p: &P,
    issuer: &str,
    jwks_uri: &str,
    development: bool,
) -> Result<Vec<Json>, DiscoveryError> {
    jwks_allowed(issuer, jwks_uri, development)?;
    let body = fetch_document(p, jwks_uri, Document::KeySet, development).await?;
    let keys = jwk::parse_jwks(&body).map_err(|_| {
        DiscoveryError::Unusable("the key set is not a JWK set (RFC 7517)".to_owned())
    })?;
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

/// A confidential client at a provider's token endpoint.
#[derive(Debug, Clone, Copy)]
pub struct TokenClient<'a> {
    /// The token endpoint.
    pub endpoint: &'a str,
    /// How the client authenticates there.
    pub auth: TokenAuth,
    /// Its id.
    pub id: &'a str,
    /// Its secret.
    pub secret: &'a str,
}

/// The token endpoint request of the authorization code grant with PKCE (RFC 6749 4.1.3, RFC
/// 7636 4.5), the client authenticated by its `auth` (RFC 6749 2.3.1).
pub fn code_exchange(
    client: TokenClient<'_>,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
    max_body_bytes: usize,
) -> crate::ports::OutboundRequest {
    let TokenClient {
        endpoint: token_endpoint,
        auth,
        id: client_id,
        secret: client_secret,
    } = client;
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", verifier);
    let mut headers = vec![
        (
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("accept".to_owned(), "application/json".to_owned()),
    ];
    match auth {
        TokenAuth::ClientSecretBasic => {
            // Both parts form-urlencoded before base64.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let basic = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{}:{}", enc(client_id), enc(client_secret)),
            );
            headers.push(("authorization".to_owned(), format!("Basic {basic}")));
        }
        TokenAuth::ClientSecretPost => {
            form.append_pair("client_id", client_id)
                .append_pair("client_secret", client_secret);
        }
    }
    crate::ports::OutboundRequest {
        method: "POST",
        url: token_endpoint.to_owned(),
        headers,
        body: form.finish().into_bytes(),
        max_body_bytes,
    }
}
