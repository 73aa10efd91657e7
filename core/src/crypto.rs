//! Small shared helpers for secrets handed to clients: random tokens from the Random port,
//! their hashes as stored in `_hash` columns, and base64url; and the Rust implementation of
//! the signature port.
//!
//! The one storage format for a token's hash is [`token_hash`]: lowercase hex SHA-256 of the
//! token's UTF-8 text. Whoever issues a token (invitations, password resets, refresh tokens) and
//! whoever looks it up must both go through it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::ports::{Random, SignatureError, SignatureVerifier};

/// Bytes of entropy in a client-facing token (256 bits).
pub const TOKEN_BYTES: usize = 32;

/// A fresh random token of `TOKEN_BYTES` bytes from the Random port, base64url without padding
/// (43 characters, safe in URLs and headers).
pub fn random_token<R: Random + ?Sized>(random: &R) -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    random.fill(&mut bytes);
    b64url_encode(&bytes)
}

/// The hash stored for a token (`*_hash` columns): lowercase hex SHA-256 of its text.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Base64url without padding (RFC 4648 section 5).
pub fn b64url_encode(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url without padding; `None` if `s` is not valid.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The bytes of lowercase or uppercase hex; `None` if `s` is not hex of whole bytes.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    s.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The [`SignatureVerifier`] in Rust (`ed25519-dalek`, strict verification): Spin's and the
/// native tests'.
#[derive(Debug, Clone, Copy, Default)]
pub struct DalekVerifier;

impl SignatureVerifier for DalekVerifier {
    async fn verify_ed25519(
        &self,
        _kid: &str,
        public_key: &[u8; 32],
        message: &[u8],
        signature: &[u8; 64],
    ) -> Result<bool, SignatureError> {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
            return Err(SignatureError::Unavailable(
                "the public key is not a point of Ed25519".into(),
            ));
        };
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        Ok(key.verify_strict(message, &signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRandom;

    #[test]
    fn sha256_matches_the_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(token_hash("abc"), sha256_hex(b"abc"));
    }

    #[test]
    fn tokens_are_url_safe_and_distinct() {
        let r = SeededRandom::new(1);
        let a = random_token(&r);
        let b = random_token(&r);
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(b64url_decode(&a).map(|v| v.len()), Some(TOKEN_BYTES));
        assert_eq!(b64url_decode("not base64!"), None);
        assert_eq!(b64url_encode(b"\xfb\xff"), "-_8");
    }

    /// The port's contract: a valid signature verifies; another message, another key and a
    /// malleated copy (S + the group order) do not.
    #[test]
    fn dalek_verifier_follows_the_signature_port_contract() {
        use ed25519_dalek::Signer;
        const ORDER: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key().to_bytes();
        let sig = key.sign(b"message").to_bytes();
        let verify = |public: &[u8; 32], message: &[u8], sig: &[u8; 64]| {
            futures_executor::block_on(DalekVerifier.verify_ed25519("k", public, message, sig))
        };
        assert_eq!(verify(&public, b"message", &sig), Ok(true));
        assert_eq!(verify(&public, b"messagE", &sig), Ok(false));
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32])
            .verifying_key()
            .to_bytes();
        assert_eq!(verify(&other, b"message", &sig), Ok(false));
        let mut malleated = sig;
        let mut carry = 0u16;
        for (b, o) in malleated[32..].iter_mut().zip(ORDER) {
            let sum = u16::from(*b) + u16::from(o) + carry;
            *b = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        assert_eq!(verify(&public, b"message", &malleated), Ok(false));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 1, 0xab, 0xff]), "0001abff");
        assert_eq!(unhex("0001abff"), Some(vec![0, 1, 0xab, 0xff]));
        assert_eq!(unhex("ABcd"), Some(vec![0xab, 0xcd]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
