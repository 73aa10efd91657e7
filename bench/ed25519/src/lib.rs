//! `verify_n(n)`: n strict Ed25519 verifications of a fixed 600-byte message (the size of an
//! access token's signing input), as `core` does them; returns how many verified.

use ed25519_dalek::{Signer, SigningKey};

/// Verifies the fixed signature `n` times.
#[no_mangle]
pub extern "C" fn verify_n(n: u32) -> u32 {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let message = [b'a'; 600];
    let sig = key.sign(&message);
    let public = key.verifying_key();
    let mut ok = 0;
    for _ in 0..n {
        if public.verify_strict(&message, &sig).is_ok() {
            ok += 1;
        }
    }
    ok
}
