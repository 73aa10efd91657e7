//! Anchors of the hash chain (FR-LOG-001): the [`chain`](super::chain) is
//! unkeyed, so whoever can write the archive objects and `archive_index` can rewrite history
//! and recompute every hash. Each archive object is therefore anchored when it is written: an
//! HMAC-SHA256, under a server secret that no storage holds, of its stream, its sequence range
//! and its last hash. The last hash covers every record of the object and, through the links,
//! everything before it, so a history rewritten without the key no longer matches its anchors.
//!
//! # Why an HMAC under a secret, not the token signing key
//!
//! The Ed25519 token keys live in D1 (public half in clear, private half sealed): a verifier
//! reading the public key from the same database an intruder can write would accept the
//! intruder's key. They also rotate yearly and are destroyed once their tokens expire, while
//! audit archives are kept seven years. An HMAC key injected as a secret (`wrangler secret`,
//! a Spin variable) is outside every store the chain lives in, costs one hash per object, and
//! only the server needs to check it: `/v1/audit/verify` is where anchors are checked.
//!
//! # Keys and rotation
//!
//! `EVENT_ANCHOR_KEY` (at least [`MIN_KEY_LEN`] characters) signs new anchors. Each anchor
//! stores the id of the key that made it ([`AnchorKey::kid`]: derived from the key, reveals
//! nothing of it), so a key can be rotated: set a new `EVENT_ANCHOR_KEY` and move the old one
//! to `EVENT_ANCHOR_PREVIOUS_KEYS` (several separated by commas or whitespace). Anchors under a
//! key that is no longer listed are reported `anchor_key_unknown`.
//!
//! # Without a key
//!
//! Where `EDGEPLANE_ENV=development` and no key is set, a public development key signs, so
//! `make dev` and the contract suite anchor without configuration; it protects nothing and a
//! deployment never accepts its anchors. Anywhere else a flush without a usable key refuses
//! to write anything ([`AnchorKeyProblem`]): the events stay in the durable log (exports still
//! read them) until the key is set, and no unanchored archive is ever written. Verification
//! without a key reports every archive as `anchor_key_missing`.
//!
//! # Canonical encoding
//!
//! The anchor is lowercase hex HMAC-SHA256 over these fields, framed as in the chain
//! (`<byte length>:<bytes>\n` each): the constant `edgeplane-event-anchor-v1`, the stream
//! (`<kind>/<tenant>`), the first and last sequence numbers (decimal), and the last record's
//! hash (64 lowercase hex digits).

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use utoipa::ToSchema;

use crate::crypto;
use crate::ports::Secrets;

/// The secret holding the key that signs new anchors.
pub const KEY_SECRET: &str = "EVENT_ANCHOR_KEY";

/// The secret holding earlier keys, still accepted when verifying (commas or whitespace
/// between them).
pub const PREVIOUS_KEYS_SECRET: &str = "EVENT_ANCHOR_PREVIOUS_KEYS";

/// Shortest accepted key, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// The key used where `EDGEPLANE_ENV=development` and [`KEY_SECRET`] is unset. It is public,
/// so its anchors prove nothing: only development accepts them.
const DEV_KEY: &[u8] = b"edgeplane-development-only-event-anchor-key-not-a-secret";

type HmacSha256 = Hmac<Sha256>;

/// Why no key can sign anchors. Messages name the secret, never its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AnchorKeyProblem {
    /// `EVENT_ANCHOR_KEY` is unset outside development.
    #[error("EVENT_ANCHOR_KEY is not set: archives cannot be anchored, so events stay in the event log until it is (a secret of at least 32 characters)")]
    Missing,
    /// `EVENT_ANCHOR_KEY` is shorter than [`MIN_KEY_LEN`].
    #[error("EVENT_ANCHOR_KEY is shorter than 32 characters: archives cannot be anchored until it is replaced")]
    TooShort,
}

impl AnchorKeyProblem {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AnchorKeyProblem::Missing => "anchor_key_missing",
            AnchorKeyProblem::TooShort => "anchor_key_too_short",
        }
    }
}

/// Which key signs anchors here, as `/v1/audit/verify` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// `EVENT_ANCHOR_KEY` is set and long enough.
    Configured,
    /// The public development key (development without `EVENT_ANCHOR_KEY`): protects nothing.
    Development,
    /// No key: nothing can be anchored or checked.
    Missing,
    /// `EVENT_ANCHOR_KEY` is too short to be used.
    Invalid,
}

/// An anchor as stored beside an archive object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The id of the key that made it.
    pub kid: String,
    /// Lowercase hex HMAC-SHA256 (see the module docs).
    pub mac: String,
}

/// What an anchor covers: an archive object's place in its stream and its last hash.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    /// `<kind>/<tenant>`.
    pub stream: &'a str,
    /// First sequence number in the object.
    pub first_seq: i64,
    /// Last sequence number in the object.
    pub last_seq: i64,
    /// The hash of its last record.
    pub last_hash: &'a str,
}

/// One anchor key.
#[derive(Clone)]
pub struct AnchorKey {
    kid: String,
    /// HMAC keyed once, cloned per use.
    keyed: HmacSha256,
}

impl std::fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnchorKey({})", self.kid)
    }
}

impl AnchorKey {
    /// A key from its secret bytes. HMAC takes keys of any length; the length rule is
    /// [`AnchorKeys::load`]'s.
    fn new(secret: &[u8]) -> Option<Self> {
        let keyed = HmacSha256::new_from_slice(secret).ok()?;
        let mut id = keyed.clone();
        id.update(b"edgeplane-event-anchor-kid");
        let kid = crypto::hex(&id.finalize().into_bytes()[..8]);
        Some(AnchorKey { kid, keyed })
    }

    /// The key's id: 16 hex digits of an HMAC of a constant under the key, so it names the key
    /// without revealing anything about it.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    fn mac(&self, at: &Position<'_>) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        for field in [
            "edgeplane-event-anchor-v1".as_bytes(),
            at.stream.as_bytes(),
            at.first_seq.to_string().as_bytes(),
            at.last_seq.to_string().as_bytes(),
            at.last_hash.as_bytes(),
        ] {
            mac.update(field.len().to_string().as_bytes());
            mac.update(b":");
            mac.update(field);
            mac.update(b"\n");
        }
        mac
    }

    /// The anchor of an archive object at `at`.
    pub fn sign(&self, at: &Position<'_>) -> Anchor {
        Anchor {
            kid: self.kid.clone(),
            mac: crypto::hex(&self.mac(at).finalize().into_bytes()),
        }
    }

    /// Whether `mac` (hex) is this key's anchor of `at`, compared in constant time.
    fn verifies(&self, at: &Position<'_>, mac: &str) -> bool {
        crypto::unhex(mac).is_some_and(|bytes| self.mac(at).verify_slice(&bytes).is_ok())
    }
}

/// Why an archive object's anchor does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorFault {
    /// The object has no anchor.
    #[error("the archive object has no anchor")]
    Missing,
    /// No key is configured to check it.
    #[error("the anchor cannot be checked: {0}")]
    NoKey(AnchorKeyProblem),
    /// It was made with a key that is not (or no longer) configured.
    #[error("the anchor was made with key {kid}, which is not configured")]
    UnknownKey {
        /// The key id stored with the anchor.
        kid: String,
    },
    /// It does not match the object's position and last hash: the history was rewritten.
    #[error("the anchor does not match the object's range and last hash")]
    Mismatch,
}

impl AnchorFault {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AnchorFault::Missing => "anchor_missing",
            AnchorFault::NoKey(_) => "anchor_key_missing",
            AnchorFault::UnknownKey { .. } => "anchor_key_unknown",
            AnchorFault::Mismatch => "anchor_mismatch",
        }
    }
}

/// The keys of one deployment: the one that signs (if any) and every one that verifies.
#[derive(Debug, Clone)]
pub struct AnchorKeys {
    signing: Result<AnchorKey, AnchorKeyProblem>,
    /// The signing key first, then previous keys, then (development only) the public key.
    verifying: Vec<AnchorKey>,
    status: KeyStatus,
}

impl AnchorKeys {
    /// Reads [`KEY_SECRET`] and [`PREVIOUS_KEYS_SECRET`], falling back to the development key
    /// only where `EDGEPLANE_ENV=development`. A previous key shorter than [`MIN_KEY_LEN`] is
    /// skipped: it can never have signed anything.
    pub fn load<S: Secrets + ?Sized>(secrets: &S) -> Self {
        let development = secrets.get("EDGEPLANE_ENV").as_deref() == Some("development");
        let (signing, status) = match secrets.get(KEY_SECRET) {
            // HMAC takes a key of any length, so `new` does not fail here.
            Some(v) if v.len() >= MIN_KEY_LEN => (
                AnchorKey::new(v.as_bytes()).ok_or(AnchorKeyProblem::TooShort),
                KeyStatus::Configured,
            ),
            Some(_) => (Err(AnchorKeyProblem::TooShort), KeyStatus::Invalid),
            None if development => (
                AnchorKey::new(DEV_KEY).ok_or(AnchorKeyProblem::Missing),
                KeyStatus::Development,
            ),
            None => (Err(AnchorKeyProblem::Missing), KeyStatus::Missing),
        };
        let mut verifying: Vec<AnchorKey> = signing.iter().cloned().collect();
        let previous = secrets.get(PREVIOUS_KEYS_SECRET).unwrap_or_default();
        verifying.extend(
            previous
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|k| k.len() >= MIN_KEY_LEN)
                .filter_map(|k| AnchorKey::new(k.as_bytes())),
        );
        // Development also reads its own earlier anchors after a key is set.
        if development && status != KeyStatus::Development {
            verifying.extend(AnchorKey::new(DEV_KEY));
        }
        AnchorKeys {
            signing,
            verifying,
            status,
        }
    }

    /// The key that signs new anchors, or why there is none.
    pub fn signer(&self) -> Result<&AnchorKey, AnchorKeyProblem> {
        self.signing.as_ref().map_err(|p| *p)
    }

    /// Which key signs here.
    pub fn status(&self) -> KeyStatus {
        self.status
    }

    /// Checks the anchor stored for an archive object at `at`.
    pub fn check(&self, at: &Position<'_>, anchor: Option<&Anchor>) -> Result<(), AnchorFault> {
        let anchor = anchor.ok_or(AnchorFault::Missing)?;
        let Some(key) = self.verifying.iter().find(|k| k.kid == anchor.kid) else {
            return Err(match &self.signing {
                Err(problem) if self.verifying.is_empty() => AnchorFault::NoKey(*problem),
                _ => AnchorFault::UnknownKey {
                    kid: anchor.kid.clone(),
                },
            });
        };
        if key.verifies(at, &anchor.mac) {
            Ok(())
        } else {
            Err(AnchorFault::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MapSecrets;

    const KEY: &str = "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk";
    const OLD: &str = "oooooooooooooooooooooooooooooooo";

    fn at(last_hash: &str) -> Position<'_> {
        Position {
            stream: "audit/t1",
            first_seq: 1,
            last_seq: 3,
            last_hash,
        }
    }

    fn secrets(pairs: &[(&str, &str)]) -> MapSecrets {
        let s = MapSecrets::default();
        for (k, v) in pairs {
            s.set(k, v);
        }
        s
    }

    /// The encoding is pinned: a change would void every stored anchor.
    #[test]
    fn the_encoding_is_stable() {
        let key = AnchorKey::new(KEY.as_bytes()).unwrap();
        let mut mac = HmacSha256::new_from_slice(KEY.as_bytes()).unwrap();
        mac.update(b"25:edgeplane-event-anchor-v1\n8:audit/t1\n1:1\n1:3\n2:ab\n");
        assert_eq!(
            key.sign(&at("ab")).mac,
            crypto::hex(&mac.finalize().into_bytes())
        );
        assert_eq!(key.kid().len(), 16);
        assert!(!key.kid().contains(KEY));
    }

    /// Every covered field changes the anchor.
    #[test]
    fn every_field_is_covered() {
        let keys = AnchorKeys::load(&secrets(&[(KEY_SECRET, KEY)]));
        let anchor = keys.signer().unwrap().sign(&at("ab"));
        assert_eq!(keys.check(&at("ab"), Some(&anchor)), Ok(()));
        for other in [
            Position {
                stream: "audit/t2",
                ..at("ab")
            },
            Position {
                first_seq: 2,
                ..at("ab")
            },
            Position {
                last_seq: 4,
                ..at("ab")
            },
            at("ac"),
        ] {
            assert_eq!(
                keys.check(&other, Some(&anchor)),
                Err(AnchorFault::Mismatch),
                "{other:?}"
            );
        }
        let forged = Anchor {
            mac: "not hex".into(),
            ..anchor
        };
        assert_eq!(
            keys.check(&at("ab"), Some(&forged)),
            Err(AnchorFault::Mismatch)
        );
        assert_eq!(keys.check(&at("ab"), None), Err(AnchorFault::Missing));
    }

    /// Rotation: anchors of a previous key still verify while it is listed, and only then.
    #[test]
    fn previous_keys_verify_after_rotation() {
        let old = AnchorKeys::load(&secrets(&[(KEY_SECRET, OLD)]));
        let anchor = old.signer().unwrap().sign(&at("ab"));
        let rotated = AnchorKeys::load(&secrets(&[
            (KEY_SECRET, KEY),
            (PREVIOUS_KEYS_SECRET, &format!("short, {OLD}")),
        ]));
        assert_ne!(rotated.signer().unwrap().kid(), anchor.kid);
        assert_eq!(rotated.check(&at("ab"), Some(&anchor)), Ok(()));
        let dropped = AnchorKeys::load(&secrets(&[(KEY_SECRET, KEY)]));
        assert_eq!(
            dropped.check(&at("ab"), Some(&anchor)),
            Err(AnchorFault::UnknownKey {
                kid: anchor.kid.clone()
            })
        );
    }

    /// Development signs with the public key; a deployment neither signs without its own key
    /// nor accepts the public key's anchors.
    #[test]
    fn the_development_key_stays_in_development() {
        let dev = AnchorKeys::load(&secrets(&[("EDGEPLANE_ENV", "development")]));
        assert_eq!(dev.status(), KeyStatus::Development);
        let anchor = dev.signer().unwrap().sign(&at("ab"));
        assert_eq!(dev.check(&at("ab"), Some(&anchor)), Ok(()));

        let bare = AnchorKeys::load(&secrets(&[]));
        assert_eq!(bare.status(), KeyStatus::Missing);
        assert_eq!(bare.signer().err(), Some(AnchorKeyProblem::Missing));
        assert_eq!(
            bare.check(&at("ab"), Some(&anchor)),
            Err(AnchorFault::NoKey(AnchorKeyProblem::Missing))
        );
        let short = AnchorKeys::load(&secrets(&[(KEY_SECRET, "short")]));
        assert_eq!(
            (short.status(), short.signer().err()),
            (KeyStatus::Invalid, Some(AnchorKeyProblem::TooShort))
        );
        let live = AnchorKeys::load(&secrets(&[(KEY_SECRET, KEY)]));
        assert_eq!(live.status(), KeyStatus::Configured);
        assert_eq!(
            live.check(&at("ab"), Some(&anchor)),
            Err(AnchorFault::UnknownKey {
                kid: anchor.kid.clone()
            })
        );
        // Development keeps reading its earlier anchors once a key is set.
        let dev_keyed = AnchorKeys::load(&secrets(&[
            ("EDGEPLANE_ENV", "development"),
            (KEY_SECRET, KEY),
        ]));
        assert_eq!(dev_keyed.status(), KeyStatus::Configured);
        assert_eq!(dev_keyed.check(&at("ab"), Some(&anchor)), Ok(()));
        assert!(!AnchorKeyProblem::Missing.to_string().contains(KEY));
    }
}
