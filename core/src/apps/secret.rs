//! The API key string and its keyed hash (FR-SYS-002).
//!
//! A key reads `ep_<env>_<key id>_<secret>`: `env` is `live` in a deployment and `dev` where
//! `EDGEPLANE_ENV=development`, the key id is 32 lowercase hex digits (the `api_keys.id`, not
//! secret, so a key is found by id, never by scanning hashes), and the secret is 32 bytes from
//! the Random port in base64url without padding (43 characters). The part before the secret is
//! the key's display `prefix`.
//!
//! Only a keyed hash is stored: `key_hash` = lowercase hex HMAC-SHA256 of the whole key string
//! under the server secret `API_KEY_PEPPER` (at least 32 characters). A database dump alone
//! cannot be used to test guesses offline. Checking a presented key recomputes the MAC and
//! compares in constant time.

use std::cell::RefCell;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::model::KeyId;
use crate::crypto;
use crate::ports::{Platform, Random, Secrets};

/// The secret naming the HMAC key of API key hashes.
pub const PEPPER_SECRET: &str = "API_KEY_PEPPER";

/// Shortest accepted `API_KEY_PEPPER`, in bytes.
pub const MIN_PEPPER_LEN: usize = 32;

/// The pepper used where `EDGEPLANE_ENV=development` and `API_KEY_PEPPER` is unset, so that
/// `make dev` and the test harnesses issue working keys without configuration. It is public,
/// so it protects nothing: a deployment (any other `EDGEPLANE_ENV`) never uses it and refuses
/// to issue or accept keys until `API_KEY_PEPPER` is set. Keys issued under it carry `ep_dev_`
/// and do not verify anywhere else.
const DEV_PEPPER: &[u8] = b"edgeplane-development-only-api-key-pepper-not-a-secret";

/// Longest string accepted as a presented key, checked before any other work.
pub const MAX_PRESENTED_LEN: usize = 128;

/// Length of the secret part, base64url of 32 bytes.
const SECRET_CHARS: usize = 43;

type HmacSha256 = Hmac<Sha256>;

thread_local! {
    /// The keyed MAC of the pepper last loaded, by the key bytes it came from: its key schedule
    /// (two SHA-256 blocks) runs once per isolate instead of once per key checked.
    static KEYED: RefCell<Option<(Vec<u8>, HmacSha256)>> = const { RefCell::new(None) };
}

/// Why no pepper is available. The message names the secret, never its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PepperProblem {
    /// `API_KEY_PEPPER` is unset outside development.
    #[error("API_KEY_PEPPER is not set: API keys cannot be issued or checked until it is (a secret of at least 32 characters)")]
    Missing,
    /// `API_KEY_PEPPER` is shorter than [`MIN_PEPPER_LEN`].
    #[error("API_KEY_PEPPER is shorter than 32 characters: API keys cannot be issued or checked until it is replaced")]
    TooShort,
}

/// The HMAC key of API key hashes, and the environment label keys carry.
pub(crate) struct Pepper {
    /// HMAC-SHA256 keyed with the pepper, cloned per use (the key schedule runs once).
    keyed: HmacSha256,
    env: &'static str,
}

impl Pepper {
    /// Reads `API_KEY_PEPPER`, falling back to the development pepper only where
    /// `EDGEPLANE_ENV=development`.
    pub(crate) fn load<P: Platform>(p: &P) -> Result<Self, PepperProblem> {
        let development = p.secrets().get("EDGEPLANE_ENV").as_deref() == Some("development");
        let env = if development { "dev" } else { "live" };
        match p.secrets().get(PEPPER_SECRET) {
            Some(v) if v.len() >= MIN_PEPPER_LEN => Pepper::from_key(v.as_bytes(), env),
            Some(_) => Err(PepperProblem::TooShort),
            None if development => Pepper::from_key(DEV_PEPPER, env),
            None => Err(PepperProblem::Missing),
        }
    }

    /// A pepper from raw key bytes (HMAC takes keys of any length, so this does not fail).
    fn from_key(key: &[u8], env: &'static str) -> Result<Self, PepperProblem> {
        let held = KEYED.with(|held| {
            held.try_borrow().ok().and_then(|held| {
                held.as_ref()
                    .filter(|(bytes, _)| bytes.as_slice() == key)
                    .map(|(_, keyed)| keyed.clone())
            })
        });
        let keyed = match held {
            Some(keyed) => keyed,
            None => {
                let keyed = HmacSha256::new_from_slice(key).map_err(|_| PepperProblem::TooShort)?;
                KEYED.with(|held| {
                    if let Ok(mut held) = held.try_borrow_mut() {
                        *held = Some((key.to_vec(), keyed.clone()));
                    }
                });
                keyed
            }
        };
        Ok(Pepper { keyed, env })
    }

    /// The environment label of keys issued here (`live` or `dev`).
    pub(crate) fn env(&self) -> &'static str {
        self.env
    }

    /// A keyed MAC over `key`.
    fn mac(&self, key: &str) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(key.as_bytes());
        mac
    }

    /// The stored hash of a key: lowercase hex HMAC-SHA256 of its text.
    pub(crate) fn hash(&self, key: &str) -> String {
        crypto::hex(&self.mac(key).finalize().into_bytes())
    }

    /// Whether `key` hashes to `stored` (hex), compared in constant time.
    pub(crate) fn verify(&self, key: &str, stored: &str) -> bool {
        match crypto::unhex(stored) {
            Some(bytes) => self.mac(key).verify_slice(&bytes).is_ok(),
            None => false,
        }
    }
}

/// A freshly issued key: the full string (shown once) and its non-secret prefix.
pub(crate) struct NewKey {
    /// `ep_<env>_<id>_<secret>`.
    pub(crate) full: String,
    /// `ep_<env>_<id>`.
    pub(crate) prefix: String,
}

/// Makes the key string of `id` with a fresh secret from the Random port.
pub(crate) fn new_key<R: Random + ?Sized>(random: &R, env: &str, id: &KeyId) -> NewKey {
    let prefix = format!("ep_{env}_{id}");
    let full = format!("{prefix}_{}", crypto::random_token(random));
    NewKey { full, prefix }
}

/// A presented key, checked for form only.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Presented<'a> {
    /// `live` or `dev`.
    pub(crate) env: &'a str,
    /// The key id.
    pub(crate) id: KeyId,
}

/// Parses the form of a presented key (length first, then segments); `None` if it is not one.
pub(crate) fn parse_presented(raw: &str) -> Option<Presented<'_>> {
    if raw.len() > MAX_PRESENTED_LEN {
        return None;
    }
    let rest = raw.strip_prefix("ep_")?;
    let mut parts = rest.splitn(3, '_');
    let env = parts.next()?;
    let id = KeyId::parse(parts.next()?).ok()?;
    let secret = parts.next()?;
    if !matches!(env, "live" | "dev") || secret.len() != SECRET_CHARS {
        return None;
    }
    crypto::b64url_decode(secret).filter(|b| b.len() == crypto::TOKEN_BYTES)?;
    Some(Presented { env, id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{SeededRandom, TestPlatform};
    use futures_executor::block_on;

    const ID: &str = "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b";

    #[test]
    fn fr_sys_002_keys_carry_their_id_and_32_random_bytes() {
        let id = KeyId::parse(ID).unwrap();
        let key = new_key(&SeededRandom::new(1), "live", &id);
        assert_eq!(key.prefix, format!("ep_live_{ID}"));
        assert!(key.full.starts_with(&format!("{}_", key.prefix)));
        assert_eq!(key.full.len(), 3 + 5 + 32 + 1 + 43);
        let parsed = parse_presented(&key.full).unwrap();
        assert_eq!((parsed.env, parsed.id.as_str()), ("live", ID));
        let other = new_key(&SeededRandom::new(2), "live", &id);
        assert_ne!(key.full, other.full);
    }

    #[test]
    fn presented_keys_are_checked_for_form() {
        let good = new_key(&SeededRandom::new(1), "dev", &KeyId::parse(ID).unwrap()).full;
        assert!(parse_presented(&good).is_some());
        let secret = &good[good.len() - 43..];
        for bad in [
            String::new(),
            "Bearer x".into(),
            format!("ep_prod_{ID}_{secret}"),
            format!("ep_live_{}_{secret}", ID.to_uppercase()),
            format!("ep_live_{ID}_{}", &secret[1..]),
            format!("ep_live_{ID}_{secret}x"),
            format!("ep_live_{ID}_{}!", &secret[1..]),
            format!("xp_live_{ID}_{secret}"),
            format!("ep_live_{ID}"),
            "ep_".repeat(50),
        ] {
            assert_eq!(parse_presented(&bad), None, "{bad}");
        }
    }

    #[test]
    fn fr_sys_002_hash_is_hmac_sha256_under_the_pepper() {
        block_on(async {
            let p = TestPlatform::new().await;
            // RFC 4231 test case 2 (key "Jefe"), through the same code with a short key.
            let jefe = Pepper::from_key(b"Jefe", "live").unwrap();
            assert_eq!(
                jefe.hash("what do ya want for nothing?"),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
            );
            assert!(jefe.verify(
                "what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
            ));
            assert!(!jefe.verify(
                "what do ya want for nothing!",
                &jefe.hash("what do ya want for nothing?")
            ));
            assert!(!jefe.verify("x", "not hex"));
            assert!(!jefe.verify("x", "abc"));

            // Production without the secret: no pepper, whatever is asked.
            assert_eq!(Pepper::load(&p).err(), Some(PepperProblem::Missing));
            p.secrets.set(PEPPER_SECRET, "short");
            assert_eq!(Pepper::load(&p).err(), Some(PepperProblem::TooShort));
            p.secrets.set(PEPPER_SECRET, &"k".repeat(32));
            let live = Pepper::load(&p).unwrap();
            assert_eq!(live.env(), "live");

            // Development falls back to the public development pepper.
            p.secrets.set(PEPPER_SECRET, "");
            p.secrets.set("EDGEPLANE_ENV", "development");
            let dev = Pepper::load(&p).unwrap();
            assert_eq!(dev.env(), "dev");
            assert_ne!(dev.hash("k"), live.hash("k"));
            assert!(!PepperProblem::Missing.to_string().contains("kkkk"));
        });
    }

    #[test]
    fn fr_sys_002_a_replaced_pepper_is_used_at_once_in_the_same_isolate() {
        // The keyed MAC is kept per isolate by the pepper it came from: a new pepper (a rotated
        // secret) must not be answered with the one held.
        let jefe = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let first = Pepper::from_key(b"Jefe", "live").unwrap();
        let again = Pepper::from_key(b"Jefe", "live").unwrap();
        assert_eq!(first.hash("what do ya want for nothing?"), jefe);
        assert_eq!(again.hash("what do ya want for nothing?"), jefe);
        let other = Pepper::from_key(b"Jeff", "live").unwrap();
        assert_ne!(other.hash("what do ya want for nothing?"), jefe);
        let expected = {
            let mut mac = HmacSha256::new_from_slice(b"Jeff").unwrap();
            mac.update(b"what do ya want for nothing?");
            crypto::hex(&mac.finalize().into_bytes())
        };
        assert_eq!(other.hash("what do ya want for nothing?"), expected);
        let back = Pepper::from_key(b"Jefe", "live").unwrap();
        assert_eq!(back.hash("what do ya want for nothing?"), jefe);
    }
}
