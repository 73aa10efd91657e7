//! Compact JWS (RFC 7515) parsing and JWT (RFC 7519) claim checks for operator tokens.
//!
//! Untrusted input is checked cheapest first: the header's size and shape, the segment count and
//! the `alg` allow-list come before any key lookup or signature check, and claims are only
//! judged once the signature verified.

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::jwk::{Alg, PublicKey};
use super::{OperatorAuthError, PlatformRole};
use crate::crypto::b64url_decode;

/// Longest token accepted, in bytes. Real operator tokens are 1-3 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: i64 = 60;
/// Longest `sub` accepted (it is stored as the platform user's external subject).
const MAX_SUBJECT_LEN: usize = 255;
/// Longest email stored from the `email` claim (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;

/// The token of an `Authorization: Bearer <token>` header. The scheme is case-insensitive.
pub fn bearer(authorization: Option<&str>) -> Result<&str, OperatorAuthError> {
    let value = authorization.ok_or(OperatorAuthError::MissingToken)?.trim();
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(OperatorAuthError::MissingToken)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(OperatorAuthError::MissingToken);
    }
    Ok(token)
}

/// The JOSE header members Edgeplane reads. Others (`typ`, `cty`...) are ignored; `jku`, `jwk`,
/// `x5u` and `x5c` are ignored on purpose: keys come only from the configured issuer.
#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Critical extensions: Edgeplane understands none, so any makes the token unacceptable.
    #[serde(default)]
    crit: Option<Json>,
}

/// A structurally valid token whose signature is not yet checked.
#[derive(Debug)]
pub struct UntrustedToken<'a> {
    /// The header's algorithm, already on the allow-list.
    pub alg: Alg,
    /// The header's key id.
    pub kid: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'a str,
    /// The payload segment, decoded only after the signature verified.
    payload: &'a str,
    /// The decoded signature.
    signature: Vec<u8>,
}

/// Parses a compact JWS: size, three non-empty base64url segments, a JSON header with an
/// accepted `alg`, no `crit`.
pub fn parse(token: &str) -> Result<UntrustedToken<'_>, OperatorAuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(OperatorAuthError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        // Two segments is an unsecured JWT at best, five a JWE: neither is accepted.
        return Err(OperatorAuthError::Malformed);
    };
    if header_b64.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(OperatorAuthError::Malformed);
    }
    let header_bytes = b64url_decode(header_b64).ok_or(OperatorAuthError::Malformed)?;
    let header: Header =
        serde_json::from_slice(&header_bytes).map_err(|_| OperatorAuthError::Malformed)?;
    let alg = Alg::parse(&header.alg).ok_or(OperatorAuthError::UnsupportedAlgorithm)?;
    if header.crit.is_some() {
        return Err(OperatorAuthError::Malformed);
    }
    if header.kid.as_ref().is_some_and(|k| k.len() > 256) {
        return Err(OperatorAuthError::Malformed);
    }
    let signature = b64url_decode(signature).ok_or(OperatorAuthError::Malformed)?;
    let signing_input = token
        .get(..header_b64.len() + 1 + payload.len())
        .ok_or(OperatorAuthError::Malformed)?;
    Ok(UntrustedToken {
        alg,
        kid: header.kid,
        signing_input,
        payload,
        signature,
    })
}

impl UntrustedToken<'_> {
    /// Whether `key` verifies the signature. A key of another algorithm never does.
    pub fn verified_by(&self, key: &PublicKey) -> bool {
        key.alg() == self.alg && key.verify(self.signing_input.as_bytes(), &self.signature)
    }

    /// The payload as a JSON object. Call only after [`UntrustedToken::verified_by`].
    pub fn claims(&self) -> Result<Map<String, Json>, OperatorAuthError> {
        let bytes = b64url_decode(self.payload).ok_or(OperatorAuthError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| OperatorAuthError::Malformed)
    }
}

/// What the claims must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// `iss`, exactly.
    pub issuer: &'a str,
    /// A member of `aud`.
    pub audience: &'a str,
    /// The claim holding the platform role.
    pub role_claim: &'a str,
    /// Now, unix milliseconds (from the Clock port).
    pub now_ms: i64,
}

/// The claims Edgeplane uses, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedClaims {
    /// `sub`.
    pub subject: String,
    /// The platform role the token grants.
    pub role: PlatformRole,
    /// `email`, when present and plausible.
    pub email: Option<String>,
}

/// Checks issuer, audience, validity period, subject and role, in that order.
pub fn check_claims(
    claims: &Map<String, Json>,
    expected: &Expected<'_>,
) -> Result<CheckedClaims, OperatorAuthError> {
    if claims.get("iss").and_then(Json::as_str) != Some(expected.issuer) {
        return Err(OperatorAuthError::WrongIssuer);
    }
    let audience_ok = match claims.get("aud") {
        Some(Json::String(aud)) => aud == expected.audience,
        Some(Json::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected.audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(OperatorAuthError::WrongAudience);
    }

    let now = expected.now_ms.div_euclid(1000);
    // `exp` is required: a token without one would be valid forever.
    let exp = numeric_date(claims, "exp")?.ok_or(OperatorAuthError::Malformed)?;
    if now >= exp.saturating_add(LEEWAY_SECS) {
        return Err(OperatorAuthError::Expired);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if nbf > now.saturating_add(LEEWAY_SECS) {
            return Err(OperatorAuthError::Expired);
        }
    }
    if let Some(iat) = numeric_date(claims, "iat")? {
        if iat > now.saturating_add(LEEWAY_SECS) {
            return Err(OperatorAuthError::Expired);
        }
    }

    let subject = claims
        .get("sub")
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_SUBJECT_LEN && !s.chars().any(char::is_control))
        .ok_or(OperatorAuthError::Malformed)?
        .to_owned();
    let role = role_from(claims, expected.role_claim).ok_or(OperatorAuthError::NoRole)?;
    let email = claims
        .get("email")
        .and_then(Json::as_str)
        .filter(|e| plausible_email(e))
        .map(str::to_owned);
    Ok(CheckedClaims {
        subject,
        role,
        email,
    })
}

/// A NumericDate claim (seconds, possibly fractional) as whole seconds; `Ok(None)` if absent,
/// `Malformed` if not a number.
fn numeric_date(claims: &Map<String, Json>, name: &str) -> Result<Option<i64>, OperatorAuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Json::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else {
                let f = n
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .ok_or(OperatorAuthError::Malformed)?;
                // Saturating: absurd values still compare the right way.
                Ok(Some(f.floor() as i64))
            }
        }
        Some(_) => Err(OperatorAuthError::Malformed),
    }
}

/// The platform role a token grants through `claim`: a string or an array of strings holding
/// `operator` or `auditor`. Operator wins when both are present. The claim is looked up by its
/// full name first (namespaced claims such as `https://example.com/roles` contain dots), then as
/// a dotted path into nested objects (Keycloak's `realm_access.roles`).
pub fn role_from(claims: &Map<String, Json>, claim: &str) -> Option<PlatformRole> {
    let value = claims.get(claim).or_else(|| {
        let mut parts = claim.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |v, p| v.get(p))
    })?;
    let names: Vec<&str> = match value {
        Json::String(s) => vec![s.as_str()],
        Json::Array(items) => items.iter().filter_map(Json::as_str).collect(),
        _ => return None,
    };
    if names.contains(&PlatformRole::Operator.as_str()) {
        Some(PlatformRole::Operator)
    } else if names.contains(&PlatformRole::Auditor.as_str()) {
        Some(PlatformRole::Auditor)
    } else {
        None
    }
}

/// Good enough to store as a display address: one `@` with text on both sides, no spaces or
/// control characters, within the length limit. Never used to identify anyone.
fn plausible_email(e: &str) -> bool {
    e.len() <= MAX_EMAIL_LEN
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fr_sys_004_bearer_header_parsing() {
        assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(Some("bearer   abc ")), Ok("abc"));
        for bad in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Basic abc"),
            Some("abc"),
        ] {
            assert_eq!(bearer(bad), Err(OperatorAuthError::MissingToken), "{bad:?}");
        }
    }

    #[test]
    fn fr_sys_004_structure_is_checked_before_crypto() {
        let h = crate::crypto::b64url_encode(br#"{"alg":"EdDSA"}"#);
        let p = crate::crypto::b64url_encode(b"{}");
        let cases: Vec<(String, OperatorAuthError)> = vec![
            (String::new(), OperatorAuthError::Malformed),
            ("a.b".into(), OperatorAuthError::Malformed),
            (format!("{h}.{p}"), OperatorAuthError::Malformed),
            (format!("{h}.{p}.c2ln.x"), OperatorAuthError::Malformed),
            (format!("{h}.{p}.c2ln.x.y"), OperatorAuthError::Malformed),
            (format!("{h}.{p}."), OperatorAuthError::Malformed),
            (format!(".{p}.c2ln"), OperatorAuthError::Malformed),
            (format!("{h}.{p}.c2ln="), OperatorAuthError::Malformed),
            (format!("{h}.{p}.!!"), OperatorAuthError::Malformed),
            (
                format!("bm90IGpzb24.{p}.c2ln"),
                OperatorAuthError::Malformed,
            ),
            (
                format!("{h}.{}.c2ln", "A".repeat(MAX_TOKEN_BYTES)),
                OperatorAuthError::Malformed,
            ),
        ];
        for (token, want) in cases {
            assert_eq!(parse(&token).map(|_| ()), Err(want), "{token:.60}");
        }
        let crit = crate::crypto::b64url_encode(br#"{"alg":"EdDSA","crit":["exp"]}"#);
        assert_eq!(
            parse(&format!("{crit}.{p}.c2ln")).map(|_| ()),
            Err(OperatorAuthError::Malformed)
        );
        for alg in ["none", "HS256", "RS512", "PS256", "ES512", "dir"] {
            let h = crate::crypto::b64url_encode(json!({ "alg": alg }).to_string().as_bytes());
            assert_eq!(
                parse(&format!("{h}.{p}.c2ln")).map(|_| ()),
                Err(OperatorAuthError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
        let token = format!("{h}.{p}.c2ln");
        let ok = parse(&token).unwrap();
        assert_eq!(ok.alg, Alg::EdDsa);
        assert_eq!(ok.kid, None);
        assert_eq!(ok.signing_input, format!("{h}.{p}"));
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://idp.example.com",
            audience: "edgeplane",
            role_claim: "roles",
            now_ms: 1_000_000_000_500,
        }
    }

    fn base() -> Map<String, Json> {
        json!({
            "iss": "https://idp.example.com", "aud": "edgeplane", "sub": "alice",
            "exp": 1_000_000_600, "iat": 1_000_000_000, "roles": ["operator"],
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    #[test]
    fn fr_sys_004_claim_refusals() {
        let now = 1_000_000_000;
        let cases: Vec<(&str, Json, Result<(), OperatorAuthError>)> = vec![
            (
                "iss",
                json!("https://idp.example.com/"),
                Err(OperatorAuthError::WrongIssuer),
            ),
            ("iss", json!(null), Err(OperatorAuthError::WrongIssuer)),
            ("aud", json!("other"), Err(OperatorAuthError::WrongAudience)),
            (
                "aud",
                json!(["a", "b"]),
                Err(OperatorAuthError::WrongAudience),
            ),
            ("aud", json!(["a", "edgeplane"]), Ok(())),
            ("aud", json!(null), Err(OperatorAuthError::WrongAudience)),
            (
                "exp",
                json!(now - LEEWAY_SECS),
                Err(OperatorAuthError::Expired),
            ),
            ("exp", json!(now - LEEWAY_SECS + 1), Ok(())),
            ("exp", json!((now - 30) as f64 + 0.5), Ok(())),
            ("exp", json!("tomorrow"), Err(OperatorAuthError::Malformed)),
            ("exp", json!(null), Err(OperatorAuthError::Malformed)),
            (
                "nbf",
                json!(now + LEEWAY_SECS + 1),
                Err(OperatorAuthError::Expired),
            ),
            ("nbf", json!(now + LEEWAY_SECS), Ok(())),
            ("iat", json!(now + 3600), Err(OperatorAuthError::Expired)),
            ("sub", json!(""), Err(OperatorAuthError::Malformed)),
            ("sub", json!(42), Err(OperatorAuthError::Malformed)),
            (
                "sub",
                json!("x".repeat(256)),
                Err(OperatorAuthError::Malformed),
            ),
            ("roles", json!(["user"]), Err(OperatorAuthError::NoRole)),
            ("roles", json!("auditor"), Ok(())),
            (
                "roles",
                json!({"operator": true}),
                Err(OperatorAuthError::NoRole),
            ),
        ];
        for (claim, value, want) in cases {
            let mut claims = base();
            if value.is_null() {
                claims.remove(claim);
            } else {
                claims.insert(claim.to_owned(), value.clone());
            }
            assert_eq!(
                check_claims(&claims, &expected()).map(|_| ()),
                want,
                "{claim} = {value}"
            );
        }
    }

    #[test]
    fn fr_sys_004_roles_and_email() {
        let mut claims = base();
        claims.insert("roles".into(), json!(["auditor", "operator"]));
        claims.insert("email".into(), json!("alice@example.com"));
        let ok = check_claims(&claims, &expected()).unwrap();
        assert_eq!(ok.role, PlatformRole::Operator);
        assert_eq!(ok.subject, "alice");
        assert_eq!(ok.email.as_deref(), Some("alice@example.com"));
        for junk in ["nobody", "a@b@c", "@x", "x@", "a b@c"] {
            claims.insert("email".into(), json!(junk));
            assert_eq!(
                check_claims(&claims, &expected()).unwrap().email,
                None,
                "{junk}"
            );
        }

        let nested =
            json!({"realm_access": {"roles": ["auditor"]}, "https://x.example/roles": "operator"});
        let nested = nested.as_object().unwrap();
        assert_eq!(
            role_from(nested, "realm_access.roles"),
            Some(PlatformRole::Auditor)
        );
        assert_eq!(
            role_from(nested, "https://x.example/roles"),
            Some(PlatformRole::Operator)
        );
        assert_eq!(role_from(nested, "realm_access.missing"), None);
    }
}
