//! PKCE (RFC 7636) with the `S256` method only: `plain` is refused, as is a missing challenge
//! (every client, public or confidential, uses PKCE).

use sha2::{Digest, Sha256};

use crate::crypto::b64url_encode;

/// Whether `s` is a well-formed code verifier (or S256 challenge alphabet): 43 to 128
/// characters of `[A-Za-z0-9-._~]` (RFC 7636 4.1).
pub fn is_verifier(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `s` is a well-formed S256 challenge: base64url of 32 bytes, 43 characters.
pub fn is_s256_challenge(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The S256 challenge of `verifier`: `BASE64URL(SHA256(ASCII(verifier)))`.
pub fn s256(verifier: &str) -> String {
    b64url_encode(&Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is well formed and its S256 challenge equals `challenge`, compared in
/// constant time.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    if !is_verifier(verifier) {
        return false;
    }
    super::ct_eq(s256(verifier).as_bytes(), challenge.as_bytes())
}
