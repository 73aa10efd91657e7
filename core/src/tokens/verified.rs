//! Access tokens this isolate has verified: their claims, kept by the SHA-256 of the token (never
//! the token itself) so a token presented again is neither parsed nor verified again. Only the
//! signature and the parsing are skipped: [`super::access::verify_with`] checks issuer, audience
//! and expiry on every call, and revocation (session, user and tenant markers) stays the
//! caller's, checked on every request as before.
//!
//! Entries hold only under the key set they were verified with: when the published key set
//! differs from the one the cache was filled under (a rotation, a key retired), the cache is
//! emptied, so a token whose key left the set stops verifying as soon as this isolate sees the
//! new set. An entry lasts until its token expires; at most [`CAPACITY`] are kept.

use std::cell::RefCell;
use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::access::{AccessClaims, LEEWAY_SECS};
use super::keys::PublicJwk;

/// Most verified tokens one isolate keeps. A full cache drops its expired entries, then, if
/// still full, everything: the next presentation of each token verifies it again.
pub const CAPACITY: usize = 4096;

/// The SHA-256 of a token's text: the cache key.
pub type TokenDigest = [u8; 32];

/// The cache key of `token`.
pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Default)]
struct Verified {
    /// `(kid, x)` of each key of the set the entries were verified under.
    key_set: Vec<(String, String)>,
    entries: HashMap<TokenDigest, AccessClaims>,
}

impl Verified {
    /// Empties the cache when `keys` is not the set it was filled under.
    fn follow(&mut self, keys: &[PublicJwk]) {
        let same = self.key_set.len() == keys.len()
            && self
                .key_set
                .iter()
                .zip(keys)
                .all(|((kid, x), k)| *kid == k.kid && *x == k.x);
        if !same {
            self.entries.clear();
            self.key_set = keys.iter().map(|k| (k.kid.clone(), k.x.clone())).collect();
        }
    }
}

thread_local! {
    static VERIFIED: RefCell<Verified> = RefCell::new(Verified::default());
}

/// Whether this isolate holds the token of `digest`, under whatever key set: a cheap test
/// before reading the current set for [`get`].
pub fn holds(digest: &TokenDigest) -> bool {
    VERIFIED.with(|v| v.try_borrow().is_ok_and(|v| v.entries.contains_key(digest)))
}

/// The claims of the token of `digest` if this isolate verified it under `keys`, the current
/// published key set. Expiry is not checked here.
pub fn get(digest: &TokenDigest, keys: &[PublicJwk]) -> Option<AccessClaims> {
    VERIFIED.with(|v| {
        let mut v = v.try_borrow_mut().ok()?;
        v.follow(keys);
        v.entries.get(digest).cloned()
    })
}

/// Remembers the claims of a token whose signature, by the key `kid`, and claims verified at
/// `now_ms`. Kept only when `kid` is in `keys` (a key found in D1 but not yet in the published
/// copy is verified every time until the copy has it).
pub fn put(digest: TokenDigest, keys: &[PublicJwk], kid: &str, claims: &AccessClaims, now_ms: i64) {
    if !keys.iter().any(|k| k.kid == kid) {
        return;
    }
    VERIFIED.with(|v| {
        let Ok(mut v) = v.try_borrow_mut() else {
            return;
        };
        v.follow(keys);
        if v.entries.len() >= CAPACITY {
            let now = now_ms.div_euclid(1000);
            v.entries.retain(|_, c| c.exp + LEEWAY_SECS > now);
            if v.entries.len() >= CAPACITY {
                v.entries.clear();
            }
        }
        v.entries.insert(digest, claims.clone());
    });
}

/// Drops the token of `digest` (it no longer passes its checks).
pub fn forget(digest: &TokenDigest) {
    VERIFIED.with(|v| {
        if let Ok(mut v) = v.try_borrow_mut() {
            v.entries.remove(digest);
        }
    });
}

/// Drops every token this isolate holds (tests share threads, and seeded keys repeat).
#[cfg(test)]
pub fn clear_isolate() {
    VERIFIED.with(|v| *v.borrow_mut() = Verified::default());
}
