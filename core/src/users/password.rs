//! Password hashing: argon2id with the OWASP parameters (19 MiB, 2 passes, 1 lane), stored as a
//! PHC string in `users.password_hash`. Salts come from the Random port.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::ports::Random;

/// Memory cost in KiB (OWASP: 19 MiB).
pub const M_COST_KIB: u32 = 19 * 1024;
/// Passes (OWASP: 2).
pub const T_COST: u32 = 2;
/// Lanes (OWASP: 1).
pub const P_COST: u32 = 1;

/// Why a password could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

fn hasher() -> Argon2<'static> {
    // The parameters are constants within argon2's limits; `DEFAULT` is unreachable.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `password` under a fresh 16-byte salt.
pub fn hash<R: Random + ?Sized>(random: &R, password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    random.fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches `phc` (a malformed stored hash never matches).
pub fn verify(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one [`verify`] without a stored hash: sign-in of an unknown email takes
/// as long as a wrong password (CON-SEC-009, no user enumeration by timing).
pub fn verify_nothing(password: &str) {
    let mut out = [0u8; 32];
    let _ = hasher().hash_password_into(password.as_bytes(), b"edgeplane-no-user", &mut out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRandom;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let r = SeededRandom::new(5);
        let h = hash(&r, "correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(&h, "correct horse battery"));
        assert!(!verify(&h, "correct horse battery!"));
        assert!(!verify("not a hash", "x"));
        assert_ne!(h, hash(&r, "correct horse battery").unwrap());
        verify_nothing("anything");
    }
}
