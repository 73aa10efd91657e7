//! TOTP (RFC 6238 over RFC 4226): HMAC-SHA-1, 6 digits, 30-second steps, one step of drift
//! either way (NFR-SEC-003). Pure functions; storage and replay protection are in [`super::mfa`].

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Bytes of a generated secret (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;

/// The code for time step `step` (HOTP of RFC 4226 with dynamic truncation).
pub fn code_at(secret: &[u8], step: u64) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return u32::MAX;
    };
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    bin % 10u32.pow(DIGITS)
}

/// The step of unix time `now_secs`.
pub fn step_of(now_secs: i64) -> i64 {
    now_secs.div_euclid(STEP_SECS)
}

/// The step whose code `code` is, among the current step and one on either side, newest
/// first; `None` if none matches or `code` is not 6 digits.
pub fn matching_step(secret: &[u8], code: &str, now_secs: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let want: u32 = code.parse().ok()?;
    let now = step_of(now_secs);
    [now + 1, now, now - 1]
        .into_iter()
        .filter(|s| *s >= 0)
        .find(|s| code_at(secret, u64::try_from(*s).unwrap_or(0)) == want)
}

/// RFC 4648 base32 without padding (authenticator apps read secrets in it).
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in data {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` URI an authenticator app enrolls from (Key Uri Format).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| {
        form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 (seed "12345678901234567890"), last 6 of the 8 digits.
    #[test]
    fn nfr_sec_003_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        let cases: &[(i64, u32)] = &[
            (59, 287_082),
            (1_111_111_109, 81_804),
            (1_111_111_111, 50_471),
            (1_234_567_890, 5_924),
            (2_000_000_000, 279_037),
            (20_000_000_000, 353_130),
        ];
        for &(t, want) in cases {
            let step = u64::try_from(step_of(t)).unwrap();
            assert_eq!(code_at(secret, step), want, "T = {t}");
            assert_eq!(
                matching_step(secret, &format!("{want:06}"), t),
                Some(step_of(t)),
                "T = {t}"
            );
        }
    }

    #[test]
    fn nfr_sec_003_one_step_of_drift_either_way() {
        let secret = b"12345678901234567890";
        let t = 1_111_111_111;
        let code = |s: i64| format!("{:06}", code_at(secret, u64::try_from(s).unwrap()));
        let now = step_of(t);
        assert_eq!(matching_step(secret, &code(now - 1), t), Some(now - 1));
        assert_eq!(matching_step(secret, &code(now + 1), t), Some(now + 1));
        assert_eq!(matching_step(secret, &code(now - 2), t), None);
        assert_eq!(matching_step(secret, &code(now + 2), t), None);
        assert_eq!(matching_step(secret, "12345", t), None);
        assert_eq!(matching_step(secret, "abcdef", t), None);
    }

    #[test]
    fn base32_and_uri() {
        // RFC 4648 section 10 vectors, without padding.
        for (input, want) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), want);
        }
        let uri = otpauth_uri("Edgeplane (acme)", "owner@acme.test", b"foobar");
        assert_eq!(
            uri,
            "otpauth://totp/Edgeplane%20%28acme%29:owner%40acme.test?secret=MZXW6YTBOI&issuer=Edgeplane%20%28acme%29&algorithm=SHA1&digits=6&period=30"
        );
    }
}
