//! Compact JWS (RFC 7515) parsing and JWT (RFC 7519) claim checks for operator tokens, through
//! jwt-compact ([`crate::jws`]).
//!
//! Untrusted input is checked cheapest first: the token's size and segments, then its header
//! and the `alg` allow-list come before any key lookup or signature check; the signature is
//! verified by jwt-compact's validator for the key's own algorithm (so `alg` is pinned to the
//! key), and claims are only judged once it verified.

use serde_json::{Map, Value as Json};

use super::jwk::{Alg, PublicKey};
use super::{OperatorAuthError, PlatformRole};
use crate::jws::{self, JsonClaims, ValidationError};

/// Longest token accepted, in bytes. Real operator tokens are 1-3 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: i64 = 60;
/// Longest `sub` accepted (it is stored as the platform user's external subject).
const MAX_SUBJECT_LEN: usize = 255;
/// Longest email stored from the `email` claim (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;
/// Longest `kid` accepted in a header.
const MAX_KID_LEN: usize = 256;

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

/// A structurally valid token whose signature is not yet checked. Of its header, Edgeplane
/// reads `alg`, `kid` and `crit`; `jku`, `jwk`, `x5u` and `x5c` are ignored on purpose: keys
/// come only from the configured issuer.
#[derive(Debug)]
pub struct UntrustedToken<'a> {
    /// The header's algorithm, already on the allow-list.
    pub alg: Alg,
    /// The header's key id.
    pub kid: Option<String>,
    /// jwt-compact's parse of the token.
    token: jws::Untrusted<'a>,
}

/// Parses a compact JWS: size, three non-empty base64url segments, a JSON header with an
/// accepted `alg`, no `crit`.
pub fn parse(token: &str) -> Result<UntrustedToken<'_>, OperatorAuthError> {
    let token = jws::parse(token, MAX_TOKEN_BYTES).ok_or(OperatorAuthError::Malformed)?;
    let alg = Alg::parse(token.algorithm()).ok_or(OperatorAuthError::UnsupportedAlgorithm)?;
    let header = token.header();
    // Critical extensions: Edgeplane understands none, so any makes the token unacceptable.
    if header.other_fields.crit.is_some() {
        return Err(OperatorAuthError::Malformed);
    }
    if header
        .key_id
        .as_ref()
        .is_some_and(|k| k.len() > MAX_KID_LEN)
    {
        return Err(OperatorAuthError::Malformed);
    }
    Ok(UntrustedToken {
        alg,
        kid: header.key_id.clone(),
        token,
    })
}

impl UntrustedToken<'_> {
    /// The claims, once one of `keys` verified the signature under its own algorithm.
    /// `BadSignature` when none does (or `keys` is empty), `UnsupportedAlgorithm` when the
    /// header's `alg` is not a key's, `Malformed` when the payload is not a JSON claims object
    /// whose `exp`, `nbf` and `iat`, where present, are numbers (jwt-compact reads it before
    /// the signature check).
    pub fn verify(&self, keys: &[PublicKey]) -> Result<JsonClaims, OperatorAuthError> {
        let mut refusal = OperatorAuthError::BadSignature;
        for key in keys {
            match key.verify(&self.token) {
                Ok(claims) => return Ok(claims),
                Err(ValidationError::MalformedClaims(_)) => {
                    return Err(OperatorAuthError::Malformed)
                }
                Err(ValidationError::AlgorithmMismatch { .. }) => {
                    refusal = OperatorAuthError::UnsupportedAlgorithm;
                }
                // Length, encoding or value of the signature: not this key's.
                Err(_) => {}
            }
        }
        Err(refusal)
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

/// Checks issuer, audience, validity period, subject and role, in that order. The times are
/// checked here, against the Clock port's `now_ms`, not by jwt-compact (which would read the
/// system clock).
pub fn check_claims(
    token: &JsonClaims,
    expected: &Expected<'_>,
) -> Result<CheckedClaims, OperatorAuthError> {
    let claims = &token.custom;
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
    let exp = token
        .expiration
        .ok_or(OperatorAuthError::Malformed)?
        .timestamp();
    if now >= exp.saturating_add(LEEWAY_SECS) {
        return Err(OperatorAuthError::Expired);
    }
    let in_future = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.is_some_and(|t| t.timestamp() > now.saturating_add(LEEWAY_SECS))
    };
    if in_future(token.not_before) || in_future(token.issued_at) {
        return Err(OperatorAuthError::Expired);
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
        assert_eq!(ok.token.signature_bytes(), b"sig");
        // No key, no signature that verifies.
        assert_eq!(
            ok.verify(&[]).map(|_| ()),
            Err(OperatorAuthError::BadSignature)
        );
    }

    /// An accepted `alg` that is not the key's is refused by the key itself, even when the key
    /// made the signature: the allow-list alone would let an RS256 header through.
    #[test]
    fn fr_sys_004_a_key_refuses_a_header_naming_another_accepted_alg() {
        use ed25519_dalek::Signer as _;
        let signing = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let x = crate::crypto::b64url_encode(signing.verifying_key().as_bytes());
        let raw = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k"});
        let keys = [super::super::jwk::parse_jwk(&serde_json::from_value(raw).unwrap()).unwrap()];
        let payload = crate::crypto::b64url_encode(br#"{"sub":"alice","exp":2000000000}"#);
        let signed = |alg: &str| {
            let header = json!({"alg": alg, "kid": "k"}).to_string();
            let input = format!(
                "{}.{payload}",
                crate::crypto::b64url_encode(header.as_bytes())
            );
            let sig = signing.sign(input.as_bytes()).to_bytes();
            format!("{input}.{}", crate::crypto::b64url_encode(&sig))
        };
        let genuine = signed("EdDSA");
        assert!(parse(&genuine).unwrap().verify(&keys).is_ok());
        for alg in ["RS256", "ES256"] {
            let token = signed(alg);
            assert_eq!(
                parse(&token).unwrap().verify(&keys).map(|_| ()),
                Err(OperatorAuthError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://idp.example.com",
            audience: "edgeplane",
            role_claim: "roles",
            now_ms: 1_000_000_000_500,
        }
    }

    /// `claims` read as jwt-compact reads a payload, then checked.
    fn check(claims: &Map<String, Json>) -> Result<CheckedClaims, OperatorAuthError> {
        let claims: JsonClaims = serde_json::from_value(Json::Object(claims.clone()))
            .map_err(|_| OperatorAuthError::Malformed)?;
        check_claims(&claims, &expected())
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
            assert_eq!(check(&claims).map(|_| ()), want, "{claim} = {value}");
        }
    }

    #[test]
    fn fr_sys_004_roles_and_email() {
        let mut claims = base();
        claims.insert("roles".into(), json!(["auditor", "operator"]));
        claims.insert("email".into(), json!("alice@example.com"));
        let ok = check(&claims).unwrap();
        assert_eq!(ok.role, PlatformRole::Operator);
        assert_eq!(ok.subject, "alice");
        assert_eq!(ok.email.as_deref(), Some("alice@example.com"));
        for junk in ["nobody", "a@b@c", "@x", "x@", "a b@c"] {
            claims.insert("email".into(), json!(junk));
            assert_eq!(check(&claims).unwrap().email, None, "{junk}");
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
