//! Verifying Edgeplane's access tokens where the app runs, without a call to Edgeplane per
//! request: EdDSA (Ed25519) signatures checked against the keys published at
//! `<issuer>/.well-known/jwks.json`, then the type, issuer, audience and validity period.
//!
//! The checks run cheapest first, as Edgeplane's own verifier does: size and shape, then the
//! header (`alg` exactly `EdDSA`, so `none` and `HS256` are refused before any key is used,
//! `typ` `at+jwt`), then the key and the signature, then the claims.
//!
//! A token verified here stays valid until it expires (15 minutes) even if its session was
//! revoked; introspection (`POST /oauth/introspect`) sees a revocation at once.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;

use crate::http::{Http, Method, Request};

/// `aud` of the access tokens Edgeplane issues for its own API (`/v1/auth/login`, `/refresh`).
pub const API_AUDIENCE: &str = "edgeplane";
/// `typ` of every Edgeplane access token (RFC 9068); ID tokens are `JWT` and are refused.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The only algorithm Edgeplane signs with.
pub const ALGORITHM: &str = "EdDSA";
/// Longest token accepted, in bytes, as Edgeplane's own verifier (its tokens are about 600).
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Clock skew tolerated on `exp` and `nbf` by default, in seconds: Edgeplane's own leeway.
pub const DEFAULT_CLOCK_TOLERANCE_SECS: u64 = 30;
/// Least time between two key set fetches caused by unknown `kid`s, in seconds, so forged
/// `kid`s cannot make the app flood Edgeplane.
pub const JWKS_REFETCH_COOLDOWN_SECS: u64 = 60;

/// The claims of an Edgeplane access token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer: the deployment's public base URL.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// `edgeplane` for API tokens, the app id for tokens the OpenID provider issued to an app.
    #[serde(deserialize_with = "one_audience")]
    pub aud: String,
    /// The tenant id.
    pub tid: String,
    /// The user's role in the tenant: `owner`, `admin` or `user`.
    pub role: String,
    /// The session id.
    pub sid: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Not before (Unix seconds), when present.
    #[serde(default)]
    pub nbf: Option<u64>,
    /// Unique token id.
    pub jti: String,
    /// When the user last proved who they are in this session (Unix seconds), when present.
    #[serde(default)]
    pub auth_time: Option<u64>,
}

/// `aud` as a string, or an array of exactly one string (RFC 7519 allows both).
fn one_audience<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    match Aud::deserialize(d)? {
        Aud::One(a) => Ok(a),
        Aud::Many(mut v) if v.len() == 1 => Ok(v.remove(0)),
        Aud::Many(_) => Err(serde::de::Error::custom("aud must name one audience")),
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a compact JWS of an access token (size, segments, encoding, JSON, claim types).
    Malformed(String),
    /// `alg` is not `EdDSA` (`none`, `HS256`, ...), the header has `crit`, or it names no `kid`.
    Algorithm,
    /// `typ` is not `at+jwt` (an ID token, say).
    Type,
    /// No published key has the token's `kid`, even after a refetch.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// `iss` is not the issuer.
    Issuer,
    /// `aud` is not the audience.
    Audience,
    /// `exp` has passed, beyond the tolerance.
    Expired,
    /// `nbf` is in the future, beyond the tolerance.
    NotYetValid,
    /// The key set could not be fetched or read.
    JwksUnavailable(String),
}

impl TokenError {
    /// A stable code, the same as the TypeScript client's.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Algorithm => "algorithm",
            Self::Type => "type",
            Self::UnknownKey => "unknown_key",
            Self::Signature => "signature",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::JwksUnavailable(_) => "jwks_unavailable",
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed token: {why}"),
            Self::JwksUnavailable(why) => write!(f, "the key set could not be used: {why}"),
            other => write!(f, "token refused: {}", other.code()),
        }
    }
}

impl std::error::Error for TokenError {}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: Option<String>,
    crv: Option<String>,
    kid: Option<String>,
    x: Option<String>,
}

/// Verifies access tokens; keeps the published keys between calls, so make one per process
/// (or Worker isolate) and reuse it.
pub struct TokenVerifier<H> {
    http: H,
    issuer: String,
    audience: String,
    jwks_url: String,
    clock_tolerance_secs: u64,
    keys: RefCell<HashMap<String, VerifyingKey>>,
    /// When the key set was last fetched (the caller's clock), if ever.
    fetched_at: Cell<Option<u64>>,
}

impl<H> fmt::Debug for TokenVerifier<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "native")]
impl TokenVerifier<crate::http::NativeHttp> {
    /// A verifier of tokens of `issuer` (Edgeplane's public base URL) for `audience`
    /// ([`API_AUDIENCE`] for Edgeplane's API tokens, an app id for the tokens its OpenID
    /// provider issued to that app), fetching keys with [`crate::NativeHttp`].
    pub fn new(issuer: &str, audience: &str) -> Self {
        Self::with_http(crate::http::NativeHttp::default(), issuer, audience)
    }
}

impl<H: Http> TokenVerifier<H> {
    /// A verifier that fetches the keys through `http`.
    pub fn with_http(http: H, issuer: &str, audience: &str) -> Self {
        let issuer = crate::trim_base(issuer);
        let jwks_url = format!("{issuer}/.well-known/jwks.json");
        Self {
            http,
            issuer,
            audience: audience.to_owned(),
            jwks_url,
            clock_tolerance_secs: DEFAULT_CLOCK_TOLERANCE_SECS,
            keys: RefCell::new(HashMap::new()),
            fetched_at: Cell::new(None),
        }
    }

    /// Fetches the keys from `url` instead of `<issuer>/.well-known/jwks.json`.
    pub fn jwks_url(mut self, url: &str) -> Self {
        url.clone_into(&mut self.jwks_url);
        self
    }

    /// Tolerates `secs` of clock skew on `exp` and `nbf` instead of 30.
    pub fn clock_tolerance_secs(mut self, secs: u64) -> Self {
        self.clock_tolerance_secs = secs;
        self
    }

    /// The claims of `token` if it is a well-formed Edgeplane access token, signed by a
    /// published key, of the issuer and audience and valid at `now_unix_secs` (give
    /// [`crate::Clock::now_unix_secs`]); otherwise why it is refused.
    pub async fn verify(
        &self,
        token: &str,
        now_unix_secs: u64,
    ) -> Result<AccessTokenClaims, TokenError> {
        let (signing_input, payload_b64, signature_b64, kid) = check_shape(token)?;
        let key = self.key(&kid, now_unix_secs).await?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or_else(|| TokenError::Malformed("the signature is not Ed25519's".into()))?;
        key.verify_strict(signing_input.as_bytes(), &signature)
            .map_err(|_| TokenError::Signature)?;
        let claims: AccessTokenClaims = decode_json(payload_b64, "claims")?;
        self.check_claims(&claims, now_unix_secs)?;
        Ok(claims)
    }

    fn check_claims(&self, c: &AccessTokenClaims, now: u64) -> Result<(), TokenError> {
        if c.iss != self.issuer {
            return Err(TokenError::Issuer);
        }
        if c.aud != self.audience {
            return Err(TokenError::Audience);
        }
        if now >= c.exp.saturating_add(self.clock_tolerance_secs) {
            return Err(TokenError::Expired);
        }
        if c.nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.clock_tolerance_secs))
        {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }

    /// The key named `kid`: from the cache, else from a fetch of the key set, at most one
    /// fetch per [`JWKS_REFETCH_COOLDOWN_SECS`] once keys were fetched.
    async fn key(&self, kid: &str, now: u64) -> Result<VerifyingKey, TokenError> {
        if let Some(key) = self.keys.borrow().get(kid) {
            return Ok(*key);
        }
        let may_fetch = match self.fetched_at.get() {
            None => true,
            Some(at) => now >= at.saturating_add(JWKS_REFETCH_COOLDOWN_SECS) || now < at,
        };
        if !may_fetch {
            return Err(TokenError::UnknownKey);
        }
        let fetched = self.fetch_keys().await?;
        self.fetched_at.set(Some(now));
        let key = fetched.get(kid).copied();
        *self.keys.borrow_mut() = fetched;
        key.ok_or(TokenError::UnknownKey)
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, VerifyingKey>, TokenError> {
        let req = Request::new(Method::Get, &self.jwks_url).header("accept", "application/json");
        let resp = self
            .http
            .send(req)
            .await
            .map_err(|e| TokenError::JwksUnavailable(e.to_string()))?;
        if resp.status != 200 {
            return Err(TokenError::JwksUnavailable(format!(
                "{} answered {}",
                self.jwks_url, resp.status
            )));
        }
        let jwks: Jwks = serde_json::from_slice(&resp.body)
            .map_err(|e| TokenError::JwksUnavailable(format!("not a key set: {e}")))?;
        Ok(jwks.keys.into_iter().filter_map(ed25519_key).collect())
    }
}

/// An Ed25519 public key of the set, with its `kid`; other keys are not Edgeplane's.
fn ed25519_key(jwk: Jwk) -> Option<(String, VerifyingKey)> {
    if jwk.kty.as_deref() != Some("OKP") || jwk.crv.as_deref() != Some("Ed25519") {
        return None;
    }
    let x: [u8; 32] = URL_SAFE_NO_PAD.decode(jwk.x?).ok()?.try_into().ok()?;
    Some((jwk.kid?, VerifyingKey::from_bytes(&x).ok()?))
}

/// The checks before any key lookup or cryptography: size, segments, `alg`, `crit`, `kid`,
/// `typ`. Returns the signing input, the payload and signature segments, and the `kid`.
fn check_shape(token: &str) -> Result<(&str, &str, &str, String), TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed("longer than 4,096 bytes".into()));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not three segments".into()));
    };
    let header: Header = decode_json(h, "header")?;
    if header.alg.as_deref() != Some(ALGORITHM) || header.crit.is_some() {
        return Err(TokenError::Algorithm);
    }
    let kid = header
        .kid
        .filter(|k| !k.is_empty() && k.len() <= 64)
        .ok_or(TokenError::Algorithm)?;
    let typ = header.typ.unwrap_or_default();
    let typ = typ.strip_prefix("application/").unwrap_or(&typ);
    if !typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE) {
        return Err(TokenError::Type);
    }
    let signing_input = &token[..h.len() + 1 + p.len()];
    Ok((signing_input, p, s, kid))
}

fn decode_json<T: serde::de::DeserializeOwned>(segment: &str, what: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed(format!("the {what} is not base64url")))?;
    serde_json::from_slice(&bytes).map_err(|e| TokenError::Malformed(format!("the {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_headers_before_any_key() {
        let b64 = |v: &str| URL_SAFE_NO_PAD.encode(v);
        let body = b64("{}");
        let cases = [
            (
                format!(
                    "{}.{body}.",
                    b64(r#"{"alg":"none","typ":"at+jwt","kid":"k"}"#)
                ),
                "algorithm",
            ),
            (
                format!(
                    "{}.{body}.c2ln",
                    b64(r#"{"alg":"HS256","typ":"at+jwt","kid":"k"}"#)
                ),
                "algorithm",
            ),
            (
                format!("{}.{body}.c2ln", b64(r#"{"alg":"EdDSA","typ":"at+jwt"}"#)),
                "algorithm",
            ),
            (
                format!(
                    "{}.{body}.c2ln",
                    b64(r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k","crit":["b64"]}"#)
                ),
                "algorithm",
            ),
            (
                format!(
                    "{}.{body}.c2ln",
                    b64(r#"{"alg":"EdDSA","typ":"JWT","kid":"k"}"#)
                ),
                "type",
            ),
            ("not a token".to_owned(), "malformed"),
            ("a.b.c.d".to_owned(), "malformed"),
            ("x".repeat(5000), "malformed"),
        ];
        for (token, code) in cases {
            let got = check_shape(&token).map(|_| ()).map_err(|e| e.code());
            assert_eq!(got, Err(code), "{token:.80}");
        }
    }
}
