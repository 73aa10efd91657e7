//! The master key: AES-256-GCM under the `MASTER_KEY` secret (32 bytes, base64), which seals
//! every `_enc` column (private signing keys; NFR-SEC-004, NFR-SEC-002). There is no fallback:
//! without the secret nothing is sealed or opened, so tokens cannot be signed.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;

use crate::ports::{Random, Secrets};

/// The secret holding the master key.
pub const MASTER_KEY_SECRET: &str = "MASTER_KEY";

/// Prefix of a sealed value: the format version, so the format can change later.
const SEALED_PREFIX: &str = "v1.";
/// AES-GCM nonce length (96 bits, random per seal from the Random port).
const NONCE_BYTES: usize = 12;

/// Why the master key is not available. Messages name the secret, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterKeyError {
    /// `MASTER_KEY` is not set.
    #[error(
        "MASTER_KEY is not set: tokens cannot be signed until it is (32 random bytes, base64)"
    )]
    Missing,
    /// `MASTER_KEY` is not 32 bytes of base64.
    #[error("MASTER_KEY is not 32 bytes of base64")]
    Invalid,
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not a value this module sealed (prefix, encoding, length).
    #[error("sealed value is malformed")]
    Malformed,
    /// The tag does not verify: another master key, another context, or tampering.
    #[error("sealed value does not open under this master key")]
    Tampered,
}

/// The loaded master key.
pub struct MasterKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Reads `MASTER_KEY` (standard or URL-safe base64 of exactly 32 bytes).
    pub fn load<S: Secrets + ?Sized>(secrets: &S) -> Result<Self, MasterKeyError> {
        let raw = secrets
            .get(MASTER_KEY_SECRET)
            .ok_or(MasterKeyError::Missing)?;
        let raw = raw.trim();
        let bytes = STANDARD
            .decode(raw)
            .or_else(|_| URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')))
            .map_err(|_| MasterKeyError::Invalid)?;
        if bytes.len() != 32 {
            return Err(MasterKeyError::Invalid);
        }
        Ok(MasterKey {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
        })
    }

    /// Seals `plaintext` bound to `context` (e.g. the row's id, as associated data, so a sealed
    /// value copied to another row does not open): `v1.` + base64url(nonce || ciphertext+tag).
    pub fn seal<R: Random + ?Sized>(&self, random: &R, context: &str, plaintext: &[u8]) -> String {
        let sealed = self.seal_bytes(random, context, plaintext);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Seals bytes as bytes, for objects rather than columns (backups): nonce || ciphertext+tag,
    /// `context` as associated data. What [`MasterKey::seal`] does, without the text envelope.
    pub fn seal_bytes<R: Random + ?Sized>(
        &self,
        random: &R,
        context: &str,
        plaintext: &[u8],
    ) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        random.fill(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: context.as_bytes(),
        };
        // Encryption fails only for inputs beyond AES-GCM's length limit (64 GiB).
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_BYTES + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens bytes of [`MasterKey::seal_bytes`] sealed with the same `context`.
    pub fn open_bytes(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_BYTES + 16 {
            return Err(OpenError::Malformed);
        }
        let (nonce, ct) = sealed.split_at(NONCE_BYTES);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Tampered)
    }

    /// A name for this key that reveals nothing of it: the first 16 hex digits of the SHA-256
    /// of a fixed label sealed under it. Recorded beside what the key sealed (backups), so the
    /// key that opens them can be told after a rotation.
    pub fn key_id(&self) -> String {
        let nonce = [0u8; NONCE_BYTES];
        let tag = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: b"",
                    aad: b"edgeplane master key id",
                },
            )
            .unwrap_or_default();
        crate::crypto::sha256_hex(&tag)[..16].to_owned()
    }

    /// Opens a value of [`MasterKey::seal`] sealed with the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(OpenError::Malformed)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_BYTES + 16 {
            return Err(OpenError::Malformed);
        }
        let (nonce, ct) = bytes.split_at(NONCE_BYTES);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{MapSecrets, SeededRandom};

    fn key(value: &str) -> Result<MasterKey, MasterKeyError> {
        let s = MapSecrets::default();
        s.set(MASTER_KEY_SECRET, value);
        MasterKey::load(&s)
    }

    /// NFR-SEC-004: a sealed value opens only under the same key and context, and any change
    /// to it is detected.
    #[test]
    fn nfr_sec_004_seal_round_trips_and_detects_tampering() {
        let k = key(&STANDARD.encode([7u8; 32])).unwrap();
        let r = SeededRandom::new(3);
        let sealed = k.seal(&r, "kid-1", b"secret seed");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("secret"));
        assert_eq!(k.open("kid-1", &sealed).unwrap(), b"secret seed");
        assert_eq!(k.open("kid-2", &sealed), Err(OpenError::Tampered));
        let other = key(&STANDARD.encode([8u8; 32])).unwrap();
        assert_eq!(other.open("kid-1", &sealed), Err(OpenError::Tampered));
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let flipped = format!("v1.{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(k.open("kid-1", &flipped), Err(OpenError::Tampered));
        assert_eq!(k.open("kid-1", "v2.abc"), Err(OpenError::Malformed));
        // Two seals of the same plaintext differ (fresh nonce).
        assert_ne!(k.seal(&r, "kid-1", b"x"), k.seal(&r, "kid-1", b"x"));
    }

    #[test]
    fn the_master_key_must_be_32_bytes_of_base64() {
        assert_eq!(
            MasterKey::load(&MapSecrets::default()).unwrap_err(),
            MasterKeyError::Missing
        );
        assert_eq!(key("not base64!").unwrap_err(), MasterKeyError::Invalid);
        assert_eq!(
            key(&STANDARD.encode([1u8; 16])).unwrap_err(),
            MasterKeyError::Invalid
        );
        assert!(key(&URL_SAFE_NO_PAD.encode([0xfbu8; 32])).is_ok());
    }
}
