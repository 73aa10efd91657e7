//! WebAuthn's CBOR and COSE path on hostile bytes: the CBOR profile, authenticator data, COSE
//! keys and signatures, and whole registration and assertion ceremonies around them, checked
//! against the recorded vectors' relying party and challenges.
//!
//! Input: one byte choosing the entry point, then its bytes. Entry points that take two parts
//! read the first part's length from the next two bytes (little-endian, cut to what is left).

#![no_main]

use std::sync::LazyLock;

use edgeplane_core::crypto::{b64url_encode, sha256_hex};
use edgeplane_core::webauthn::cbor;
use edgeplane_core::webauthn::verify::{
    self, AuthData, AuthenticationResponse, CredentialKey, Expected, RegistrationResponse,
};
use libfuzzer_sys::fuzz_target;

const RP_ID: &str = "login.acme.test";
const ORIGIN: &str = "https://login.acme.test";
const CHALLENGE_REG: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";
const CHALLENGE_GET: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI";

/// The recorded ceremonies and the keys they registered.
struct Vectors {
    registration: RegistrationResponse,
    es256_assertion: AuthenticationResponse,
    eddsa_assertion: AuthenticationResponse,
    es256_key: Vec<u8>,
    eddsa_key: Vec<u8>,
}

fn expected(challenge: &str) -> Expected {
    Expected {
        rp_id: RP_ID.into(),
        origin: ORIGIN.into(),
        challenge_hash: sha256_hex(challenge.as_bytes()),
        require_uv: false,
    }
}

static VECTORS: LazyLock<Vectors> = LazyLock::new(|| {
    let reg = |json: &str| -> RegistrationResponse {
        serde_json::from_str(json).expect("a recorded registration")
    };
    let get = |json: &str| -> AuthenticationResponse {
        serde_json::from_str(json).expect("a recorded assertion")
    };
    let es256 = reg(include_str!(
        "../../src/webauthn/testdata/es256_registration.json"
    ));
    let eddsa = reg(include_str!(
        "../../src/webauthn/testdata/eddsa_registration.json"
    ));
    let key = |r: &RegistrationResponse| {
        verify::verify_registration(r, &expected(CHALLENGE_REG))
            .expect("the recorded registration verifies")
            .cose_key
    };
    Vectors {
        es256_key: key(&es256),
        eddsa_key: key(&eddsa),
        registration: es256,
        es256_assertion: get(include_str!(
            "../../src/webauthn/testdata/es256_assertion.json"
        )),
        eddsa_assertion: get(include_str!(
            "../../src/webauthn/testdata/eddsa_assertion.json"
        )),
    }
});

/// Splits `data` into two parts, the first's length in its first two bytes.
fn two_parts(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return (data, &[]);
    };
    rest.split_at(usize::from(u16::from_le_bytes(*len)).min(rest.len()))
}

/// The CBOR profile: a whole item decodes exactly when its prefix decode uses every byte,
/// and what it decodes to encodes back to CBOR that decodes to the same value.
fn cbor_profile(data: &[u8]) {
    let whole = cbor::decode(data);
    match cbor::decode_prefix(data) {
        Ok((value, used)) => {
            assert!(
                used >= 1 && used <= data.len(),
                "used {used} of {}",
                data.len()
            );
            assert_eq!(whole.is_ok(), used == data.len());
            assert_eq!(cbor::decode(&data[..used]).as_ref(), Ok(&value));
            let mut again = Vec::new();
            ciborium::into_writer(&value, &mut again).expect("a decoded value encodes");
            assert_eq!(cbor::decode(&again), Ok(value), "re-encoded {again:02x?}");
        }
        Err(e) => assert_eq!(whole, Err(e)),
    }
}

/// Authenticator data, and the COSE key it carries.
fn auth_data(data: &[u8]) {
    if let Ok(ad) = AuthData::parse(data) {
        if let Some((id, key)) = &ad.attested {
            assert!(!id.is_empty() && id.len() <= verify::MAX_CREDENTIAL_ID_BYTES);
            assert!(cbor::decode(key).is_ok(), "the key is one whole item");
            let _ = CredentialKey::from_cose(key);
        }
    }
}

/// A COSE key, and a signature over a fixed message under it.
fn cose_key(data: &[u8]) {
    let (key, signature) = two_parts(data);
    if let Ok((key, alg)) = CredentialKey::from_cose(key) {
        assert!(alg == verify::ALG_ES256 || alg == verify::ALG_EDDSA);
        let _ = key.verify(b"authenticator data and client data hash", signature);
    }
}

/// A registration whose attestation object is `data`, the rest recorded.
fn registration(data: &[u8]) {
    let mut r = VECTORS.registration.clone();
    r.response.attestation_object = b64url_encode(data);
    if let Ok(cred) = verify::verify_registration(&r, &expected(CHALLENGE_REG)) {
        assert!(CredentialKey::from_cose(&cred.cose_key).is_ok());
    }
}

/// An assertion whose authenticator data and signature are `data`, checked by a recorded key.
fn assertion(data: &[u8], eddsa: bool) {
    let (auth_data, signature) = two_parts(data);
    let v = &*VECTORS;
    let (mut a, key) = if eddsa {
        (v.eddsa_assertion.clone(), &v.eddsa_key)
    } else {
        (v.es256_assertion.clone(), &v.es256_key)
    };
    a.response.authenticator_data = b64url_encode(auth_data);
    a.response.signature = b64url_encode(signature);
    let _ = verify::verify_assertion(&a, &expected(CHALLENGE_GET), key);
}

/// A whole credential response as the browser's JSON, both ceremonies.
fn response_json(data: &[u8]) {
    if let Ok(r) = serde_json::from_slice::<RegistrationResponse>(data) {
        let _ = verify::verify_registration(&r, &expected(CHALLENGE_REG));
    }
    if let Ok(a) = serde_json::from_slice::<AuthenticationResponse>(data) {
        let _ = verify::assertion_credential_id(&a);
        let _ = verify::assertion_user_handle(&a);
        let _ = verify::verify_assertion(&a, &expected(CHALLENGE_GET), &VECTORS.es256_key);
        let _ = verify::verify_assertion(&a, &expected(CHALLENGE_GET), &VECTORS.eddsa_key);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 7 {
        0 => cbor_profile(rest),
        1 => auth_data(rest),
        2 => cose_key(rest),
        3 => registration(rest),
        4 => assertion(rest, false),
        5 => assertion(rest, true),
        _ => response_json(rest),
    }
});
