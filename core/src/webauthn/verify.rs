//! The WebAuthn ceremony checks that need no storage (WebAuthn Level 3, sections 7.1 and 7.2):
//! client data, authenticator data, the `none` attestation, COSE public keys (ES256 and EdDSA)
//! and assertion signatures. Storage-bound checks (the challenge's single use, the credential's
//! owner, the sign count) are in the service.

use coset::{
    iana, AsCborValue as _, CoseError, CoseKey, KeyType, Label, RegisteredLabelWithPrivate,
};
use p256::ecdsa::signature::Verifier as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::cbor::{self, Value};
use crate::crypto::{b64url_decode, b64url_encode, sha256_hex};
use crate::kernel::schema::string_enum;

/// COSE algorithm ES256 (ECDSA P-256 with SHA-256).
pub const ALG_ES256: i64 = -7;
/// COSE algorithm EdDSA (Ed25519).
pub const ALG_EDDSA: i64 = -8;

/// Authenticator data flag: user present.
pub const FLAG_UP: u8 = 0x01;
/// Authenticator data flag: user verified.
pub const FLAG_UV: u8 = 0x04;
/// Authenticator data flag: attested credential data included.
pub const FLAG_AT: u8 = 0x40;
/// Authenticator data flag: extension data included.
pub const FLAG_ED: u8 = 0x80;

/// Longest credential id accepted (WebAuthn Level 3 caps it at 1023 bytes).
pub const MAX_CREDENTIAL_ID_BYTES: usize = 1023;
/// Longest base64url field read from a response: bounds decoding before any work.
const MAX_FIELD_CHARS: usize = 16 * 1024;

/// Why a ceremony response is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CeremonyError {
    /// A field is missing, not base64url, or not the structure it should be.
    #[error("the credential response is malformed: {0}")]
    Malformed(&'static str),
    /// `clientDataJSON.type` is not the ceremony's.
    #[error("the client data is for another ceremony")]
    WrongType,
    /// The challenge is not the one issued for this flow.
    #[error("the challenge does not match")]
    ChallengeMismatch,
    /// The origin is not Edgeplane's relying party origin.
    #[error("the origin is not the relying party's")]
    OriginMismatch,
    /// The authenticator data is for another relying party id.
    #[error("the credential is scoped to another relying party")]
    RpIdMismatch,
    /// The user presence flag is not set.
    #[error("the authenticator did not test user presence")]
    UserNotPresent,
    /// User verification was required and not performed.
    #[error("the authenticator did not verify the user")]
    UserNotVerified,
    /// An attestation format other than `none`.
    #[error("attestation format {0} is not accepted: request attestation none")]
    UnsupportedAttestation(String),
    /// A key type or algorithm other than ES256 and EdDSA.
    #[error("only ES256 (-7) and EdDSA (-8) credentials are accepted")]
    UnsupportedAlgorithm,
    /// The credential id of the response disagrees with the authenticator data.
    #[error("the credential id does not match the authenticator data")]
    CredentialIdMismatch,
    /// The assertion signature does not verify under the registered key.
    #[error("the signature does not verify")]
    BadSignature,
}

impl CeremonyError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            CeremonyError::Malformed(_) => "webauthn_malformed",
            CeremonyError::WrongType => "webauthn_wrong_type",
            CeremonyError::ChallengeMismatch => "webauthn_challenge_mismatch",
            CeremonyError::OriginMismatch => "webauthn_origin_mismatch",
            CeremonyError::RpIdMismatch => "webauthn_rp_id_mismatch",
            CeremonyError::UserNotPresent => "webauthn_user_not_present",
            CeremonyError::UserNotVerified => "webauthn_user_not_verified",
            CeremonyError::UnsupportedAttestation(_) => "webauthn_unsupported_attestation",
            CeremonyError::UnsupportedAlgorithm => "webauthn_unsupported_algorithm",
            CeremonyError::CredentialIdMismatch => "webauthn_credential_id_mismatch",
            CeremonyError::BadSignature => "webauthn_bad_signature",
        }
    }
}

/// What a ceremony must match: fixed when its options were issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The relying party id (a registrable domain, e.g. `login.example.com`).
    pub rp_id: String,
    /// The exact origin of the page (`https://login.example.com`).
    pub origin: String,
    /// Lowercase hex SHA-256 of the base64url challenge issued.
    pub challenge_hash: String,
    /// Whether the UV flag is required (passwordless sign-in).
    pub require_uv: bool,
}

/// `RegistrationResponseJSON` (WebAuthn Level 3, section 5.1): what
/// `PublicKeyCredential.toJSON()` gives after `navigator.credentials.create()`. Only
/// attestation format `none` is accepted; only ES256 and EdDSA keys. Other members are
/// ignored.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RegistrationResponseJSON)]
pub struct RegistrationResponse {
    /// The credential id, base64url without padding.
    pub id: String,
    /// The same id, base64url without padding; null is the same as absent.
    #[serde(default)]
    pub raw_id: Option<String>,
    /// Always `public-key` (another value is refused).
    #[serde(rename = "type")]
    #[schema(schema_with = public_key_type)]
    pub kind: String,
    /// The authenticator's answer.
    #[schema(inline)]
    pub response: AttestationResponse,
}

/// `AuthenticatorAttestationResponseJSON`: the fields Edgeplane reads.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttestationResponse {
    /// The client data JSON, base64url without padding.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// The CBOR attestation object, base64url without padding.
    pub attestation_object: String,
    /// Transport hints (`usb`, `nfc`, `ble`, `internal`, `hybrid`).
    #[serde(default)]
    pub transports: Vec<String>,
}

/// `AuthenticationResponseJSON`: what `PublicKeyCredential.toJSON()` gives after
/// `navigator.credentials.get()`. Other members are ignored.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AuthenticationResponseJSON)]
pub struct AuthenticationResponse {
    /// The credential id, base64url without padding.
    pub id: String,
    /// The same id, base64url without padding; null is the same as absent.
    #[serde(default)]
    pub raw_id: Option<String>,
    /// Always `public-key` (another value is refused).
    #[serde(rename = "type")]
    #[schema(schema_with = public_key_type)]
    pub kind: String,
    /// The authenticator's answer.
    #[schema(inline)]
    pub response: AssertionResponse,
}

/// `AuthenticatorAssertionResponseJSON`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssertionResponse {
    /// The client data JSON, base64url without padding.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// The authenticator data, base64url without padding.
    pub authenticator_data: String,
    /// The signature (ASN.1 DER for ES256, raw for EdDSA), base64url without padding.
    pub signature: String,
    /// The user handle, for discoverable credentials, base64url without padding; null is the
    /// same as absent.
    #[serde(default)]
    pub user_handle: Option<String>,
}

fn public_key_type() -> utoipa::openapi::Object {
    string_enum(&["public-key"])
}

/// A verified registration: what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    /// The credential id (raw bytes).
    pub credential_id: Vec<u8>,
    /// The COSE_Key as the authenticator encoded it.
    pub cose_key: Vec<u8>,
    /// `-7` or `-8`.
    pub alg: i64,
    /// The initial signature counter.
    pub sign_count: u32,
    /// Whether the UV flag was set.
    pub user_verified: bool,
    /// Transport hints, filtered to known values.
    pub transports: Vec<String>,
}

/// A verified assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The signature counter the authenticator reported.
    pub sign_count: u32,
    /// Whether the UV flag was set.
    pub user_verified: bool,
}

/// Parsed authenticator data (WebAuthn Level 3, section 6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthData {
    /// SHA-256 of the relying party id.
    pub rp_id_hash: [u8; 32],
    /// Flags byte.
    pub flags: u8,
    /// Signature counter.
    pub sign_count: u32,
    /// Attested credential: id and COSE key bytes, when the AT flag is set.
    pub attested: Option<(Vec<u8>, Vec<u8>)>,
}

fn b64(field: &'static str, s: &str) -> Result<Vec<u8>, CeremonyError> {
    if s.len() > MAX_FIELD_CHARS {
        return Err(CeremonyError::Malformed(field));
    }
    // Browsers emit unpadded base64url; tolerate padding some libraries add.
    b64url_decode(s.trim_end_matches('=')).ok_or(CeremonyError::Malformed(field))
}

impl AuthData {
    /// Parses authenticator data; the attested credential data must be present exactly when
    /// the AT flag says so.
    pub fn parse(bytes: &[u8]) -> Result<AuthData, CeremonyError> {
        let bad = CeremonyError::Malformed("authenticatorData");
        if bytes.len() < 37 {
            return Err(bad);
        }
        let mut rp_id_hash = [0u8; 32];
        rp_id_hash.copy_from_slice(&bytes[..32]);
        let flags = bytes[32];
        let sign_count = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
        let rest = &bytes[37..];
        let mut attested = None;
        let mut used = 0;
        if flags & FLAG_AT != 0 {
            // aaguid (16), credentialIdLength (2), credentialId, credentialPublicKey (CBOR).
            if rest.len() < 18 {
                return Err(bad);
            }
            let id_len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
            if id_len == 0 || id_len > MAX_CREDENTIAL_ID_BYTES || rest.len() < 18 + id_len {
                return Err(bad);
            }
            let id = rest[18..18 + id_len].to_vec();
            let key_bytes = &rest[18 + id_len..];
            let (_, key_len) =
                cbor::decode_prefix(key_bytes).map_err(|_| CeremonyError::Malformed("COSE key"))?;
            attested = Some((id, key_bytes[..key_len].to_vec()));
            used = 18 + id_len + key_len;
        }
        let tail = &rest[used..];
        if flags & FLAG_ED != 0 {
            let ext = cbor::decode(tail).map_err(|_| bad.clone())?;
            if !ext.is_map() {
                return Err(bad);
            }
        } else if !tail.is_empty() {
            return Err(bad);
        }
        Ok(AuthData {
            rp_id_hash,
            flags,
            sign_count,
            attested,
        })
    }
}

/// A credential public key Edgeplane verifies with.
#[derive(Debug, Clone)]
pub enum CredentialKey {
    /// ES256.
    P256(p256::ecdsa::VerifyingKey),
    /// EdDSA over Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A parameter of a COSE key by its label (RFC 9053: `-1` curve, `-2` x, `-3` y).
fn param(key: &CoseKey, label: i64) -> Option<&Value> {
    key.params
        .iter()
        .find(|(l, _)| *l == Label::Int(label))
        .map(|(_, v)| v)
}

fn coord(key: &CoseKey, label: i64) -> Result<[u8; 32], CeremonyError> {
    param(key, label)
        .and_then(Value::as_bytes)
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or(CeremonyError::Malformed("COSE key coordinates"))
}

/// Decodes a COSE_Key. Bytes that are not CBOR, or that repeat a label (RFC 9052 section 14
/// forbids it), are malformed; a CBOR map that is not a key `coset` understands (no `kty`, an
/// unregistered algorithm) is a key Edgeplane does not support.
fn cose_key(bytes: &[u8]) -> Result<CoseKey, CeremonyError> {
    let value = cbor::decode(bytes).map_err(|_| CeremonyError::Malformed("COSE key"))?;
    CoseKey::from_cbor_value(value).map_err(|e| match e {
        CoseError::DuplicateMapKey => CeremonyError::Malformed("COSE key"),
        _ => CeremonyError::UnsupportedAlgorithm,
    })
}

impl CredentialKey {
    /// Parses a COSE_Key (RFC 9053): EC2 P-256 with alg -7, or OKP Ed25519 with alg -8. The
    /// point is checked to be on the curve; anything else is unsupported.
    pub fn from_cose(bytes: &[u8]) -> Result<(CredentialKey, i64), CeremonyError> {
        use RegisteredLabelWithPrivate::Assigned;
        let key = cose_key(bytes)?;
        let crv = param(&key, iana::Ec2KeyParameter::Crv as i64)
            .and_then(Value::as_integer)
            .and_then(|c| i64::try_from(c).ok());
        match (&key.kty, &key.alg, crv) {
            (
                KeyType::Assigned(iana::KeyType::EC2),
                Some(Assigned(iana::Algorithm::ES256)),
                Some(crv),
            ) if crv == iana::EllipticCurve::P_256 as i64 => {
                let x = coord(&key, iana::Ec2KeyParameter::X as i64)?;
                let y = coord(&key, iana::Ec2KeyParameter::Y as i64)?;
                let point = p256::EncodedPoint::from_affine_coordinates(
                    p256::FieldBytes::from_slice(&x),
                    p256::FieldBytes::from_slice(&y),
                    false,
                );
                let vk = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                    .map_err(|_| CeremonyError::Malformed("COSE key point"))?;
                Ok((CredentialKey::P256(vk), ALG_ES256))
            }
            (
                KeyType::Assigned(iana::KeyType::OKP),
                Some(Assigned(iana::Algorithm::EdDSA)),
                Some(crv),
            ) if crv == iana::EllipticCurve::Ed25519 as i64 => {
                let x = coord(&key, iana::OkpKeyParameter::X as i64)?;
                let vk = ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| CeremonyError::Malformed("COSE key point"))?;
                Ok((CredentialKey::Ed25519(vk), ALG_EDDSA))
            }
            _ => Err(CeremonyError::UnsupportedAlgorithm),
        }
    }

    /// Verifies a WebAuthn signature over `message`: ASN.1 DER `(r, s)` for ES256 (section
    /// 6.5.6), the 64 raw bytes for EdDSA.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            CredentialKey::P256(vk) => {
                let Some(raw) = der_signature_to_raw(signature) else {
                    return false;
                };
                let Ok(sig) = p256::ecdsa::Signature::from_slice(&raw) else {
                    return false;
                };
                vk.verify(message, &sig).is_ok()
            }
            CredentialKey::Ed25519(vk) => {
                let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
                    return false;
                };
                vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes))
                    .is_ok()
            }
        }
    }
}

/// `SEQUENCE { INTEGER r, INTEGER s }` in strict DER to the 64-byte `r || s`.
fn der_signature_to_raw(der: &[u8]) -> Option<[u8; 64]> {
    let (&tag, rest) = der.split_first()?;
    let (&len, body) = rest.split_first()?;
    if tag != 0x30 || usize::from(len) != body.len() || len > 0x7f {
        return None;
    }
    let (r, body) = der_integer(body)?;
    let (s, body) = der_integer(body)?;
    if !body.is_empty() {
        return None;
    }
    let mut out = [0u8; 64];
    out[32 - r.len()..32].copy_from_slice(r);
    out[64 - s.len()..].copy_from_slice(s);
    Some(out)
}

/// One positive DER INTEGER of at most 32 significant bytes; minimal encoding required.
fn der_integer(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = usize::from(len);
    if tag != 0x02 || len == 0 || len > 33 || rest.len() < len {
        return None;
    }
    let (mut int, rest) = rest.split_at(len);
    if int[0] & 0x80 != 0 {
        return None;
    }
    if int[0] == 0 {
        if int.len() == 1 || int[1] & 0x80 == 0 {
            return None;
        }
        int = &int[1..];
    }
    if int.len() > 32 {
        return None;
    }
    Some((int, rest))
}

/// The client data members Edgeplane checks (section 5.8.1).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(default)]
    cross_origin: Option<bool>,
}

/// Checks client data: ceremony type, the challenge issued (by hash), the exact origin, and
/// no cross-origin iframe. Returns SHA-256 of the raw JSON (the signed `clientDataHash`).
pub fn check_client_data(
    raw: &[u8],
    kind: &str,
    exp: &Expected,
) -> Result<[u8; 32], CeremonyError> {
    let cd: ClientData =
        serde_json::from_slice(raw).map_err(|_| CeremonyError::Malformed("clientDataJSON"))?;
    if cd.kind != kind {
        return Err(CeremonyError::WrongType);
    }
    if sha256_hex(cd.challenge.as_bytes()) != exp.challenge_hash {
        return Err(CeremonyError::ChallengeMismatch);
    }
    if cd.origin != exp.origin || cd.cross_origin == Some(true) {
        return Err(CeremonyError::OriginMismatch);
    }
    Ok(Sha256::digest(raw).into())
}

fn check_auth_data(ad: &AuthData, exp: &Expected) -> Result<(), CeremonyError> {
    let want: [u8; 32] = Sha256::digest(exp.rp_id.as_bytes()).into();
    if ad.rp_id_hash != want {
        return Err(CeremonyError::RpIdMismatch);
    }
    if ad.flags & FLAG_UP == 0 {
        return Err(CeremonyError::UserNotPresent);
    }
    if exp.require_uv && ad.flags & FLAG_UV == 0 {
        return Err(CeremonyError::UserNotVerified);
    }
    Ok(())
}

/// The transports WebAuthn Level 3 defines; others are dropped rather than stored.
const KNOWN_TRANSPORTS: &[&str] = &["usb", "nfc", "ble", "smart-card", "hybrid", "internal"];

/// Verifies a registration (section 7.1): client data, `none` attestation, authenticator data,
/// and an ES256 or EdDSA credential key. Uniqueness of the credential id is the caller's.
pub fn verify_registration(
    resp: &RegistrationResponse,
    exp: &Expected,
) -> Result<NewCredential, CeremonyError> {
    if resp.kind != "public-key" {
        return Err(CeremonyError::Malformed("type"));
    }
    let client_data = b64("clientDataJSON", &resp.response.client_data_json)?;
    check_client_data(&client_data, "webauthn.create", exp)?;
    let att = b64("attestationObject", &resp.response.attestation_object)?;
    let att = cbor::decode(&att).map_err(|_| CeremonyError::Malformed("attestationObject"))?;
    let fmt = cbor::text_member(&att, "fmt")
        .and_then(Value::as_text)
        .ok_or(CeremonyError::Malformed("attestationObject fmt"))?;
    // Only `none`: Edgeplane makes no decision on the authenticator's make, so an attestation
    // statement would be verified for nothing (packed self-attestation is refused as well).
    if fmt != "none" {
        return Err(CeremonyError::UnsupportedAttestation(
            fmt.chars().take(32).collect(),
        ));
    }
    if !matches!(cbor::text_member(&att, "attStmt"), Some(Value::Map(m)) if m.is_empty()) {
        return Err(CeremonyError::Malformed("attestationObject attStmt"));
    }
    let auth_data = cbor::text_member(&att, "authData")
        .and_then(Value::as_bytes)
        .ok_or(CeremonyError::Malformed("attestationObject authData"))?;
    let ad = AuthData::parse(auth_data)?;
    check_auth_data(&ad, exp)?;
    let (credential_id, cose_key) = ad
        .attested
        .ok_or(CeremonyError::Malformed("attested credential data"))?;
    let id = b64url_encode(&credential_id);
    if resp.id.trim_end_matches('=') != id
        || resp
            .raw_id
            .as_deref()
            .is_some_and(|r| r.trim_end_matches('=') != id)
    {
        return Err(CeremonyError::CredentialIdMismatch);
    }
    let (_, alg) = CredentialKey::from_cose(&cose_key)?;
    let mut transports: Vec<String> = resp
        .response
        .transports
        .iter()
        .filter(|t| KNOWN_TRANSPORTS.contains(&t.as_str()))
        .cloned()
        .collect();
    transports.dedup();
    Ok(NewCredential {
        credential_id,
        cose_key,
        alg,
        sign_count: ad.sign_count,
        user_verified: ad.flags & FLAG_UV != 0,
        transports,
    })
}

/// Verifies an assertion (section 7.2) by the credential whose COSE key is `cose_key`:
/// client data, authenticator data and the signature over `authData || SHA-256(clientData)`.
/// The sign count rule and the credential's owner are the caller's.
pub fn verify_assertion(
    resp: &AuthenticationResponse,
    exp: &Expected,
    cose_key: &[u8],
) -> Result<VerifiedAssertion, CeremonyError> {
    if resp.kind != "public-key" {
        return Err(CeremonyError::Malformed("type"));
    }
    let client_data = b64("clientDataJSON", &resp.response.client_data_json)?;
    let client_hash = check_client_data(&client_data, "webauthn.get", exp)?;
    let auth_data = b64("authenticatorData", &resp.response.authenticator_data)?;
    let ad = AuthData::parse(&auth_data)?;
    check_auth_data(&ad, exp)?;
    let signature = b64("signature", &resp.response.signature)?;
    let (key, _) = CredentialKey::from_cose(cose_key)?;
    let mut message = auth_data;
    message.extend_from_slice(&client_hash);
    if !key.verify(&message, &signature) {
        return Err(CeremonyError::BadSignature);
    }
    Ok(VerifiedAssertion {
        sign_count: ad.sign_count,
        user_verified: ad.flags & FLAG_UV != 0,
    })
}

/// The raw credential id of an assertion (from `id`, which must agree with `rawId`).
pub fn assertion_credential_id(resp: &AuthenticationResponse) -> Result<Vec<u8>, CeremonyError> {
    let id = b64("id", &resp.id)?;
    if id.is_empty() || id.len() > MAX_CREDENTIAL_ID_BYTES {
        return Err(CeremonyError::Malformed("id"));
    }
    if let Some(raw) = &resp.raw_id {
        if b64("rawId", raw)? != id {
            return Err(CeremonyError::CredentialIdMismatch);
        }
    }
    Ok(id)
}

/// The decoded user handle of an assertion, if the authenticator gave one.
pub fn assertion_user_handle(
    resp: &AuthenticationResponse,
) -> Result<Option<Vec<u8>>, CeremonyError> {
    match resp.response.user_handle.as_deref() {
        None | Some("") => Ok(None),
        Some(h) => b64("userHandle", h).map(Some),
    }
}

#[cfg(test)]
mod der_tests {
    use super::*;

    #[test]
    fn der_signatures_are_strict() {
        // r = 1, s = 0x80 (needs a leading zero).
        let der = [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80];
        let raw = der_signature_to_raw(&der).unwrap();
        assert_eq!(raw[31], 1);
        assert_eq!(raw[63], 0x80);
        // Negative, non-minimal, trailing bytes, wrong tag.
        assert!(der_signature_to_raw(&[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01]).is_none());
        assert!(
            der_signature_to_raw(&[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01]).is_none()
        );
        assert!(
            der_signature_to_raw(&[0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00]).is_none()
        );
        assert!(der_signature_to_raw(&[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]).is_none());
    }
}

#[cfg(test)]
mod cose_tests {
    use super::*;

    fn int(i: i64) -> Value {
        Value::Integer(i.into())
    }

    fn encode(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    fn ed25519_members() -> Vec<(Value, Value)> {
        let x = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .verifying_key()
            .to_bytes();
        vec![
            (int(1), int(1)),
            (int(3), int(-8)),
            (int(-1), int(6)),
            (int(-2), Value::Bytes(x.to_vec())),
        ]
    }

    fn refusal(members: Vec<(Value, Value)>) -> CeremonyError {
        CredentialKey::from_cose(&encode(&Value::Map(members))).unwrap_err()
    }

    #[test]
    fn cose_keys_are_mapped_strictly() {
        assert_eq!(
            CredentialKey::from_cose(&encode(&Value::Map(ed25519_members())))
                .unwrap()
                .1,
            ALG_EDDSA
        );
        let with = |extra: (Value, Value)| {
            let mut m = ed25519_members();
            m.push(extra);
            m
        };
        // A repeated label is malformed, whichever value comes first.
        assert_eq!(
            refusal(with((int(3), int(-7)))),
            CeremonyError::Malformed("COSE key")
        );
        // No key type, a text key type, an unregistered algorithm: not a key Edgeplane uses.
        let mut no_kty = ed25519_members();
        no_kty.remove(0);
        assert_eq!(refusal(no_kty), CeremonyError::UnsupportedAlgorithm);
        let mut text_kty = ed25519_members();
        text_kty[0].1 = Value::Text("OKP".into());
        assert_eq!(refusal(text_kty), CeremonyError::UnsupportedAlgorithm);
        let mut odd_alg = ed25519_members();
        odd_alg[1].1 = int(-60_000);
        assert_eq!(refusal(odd_alg), CeremonyError::UnsupportedAlgorithm);
        // The right key type with the other curve.
        let mut other_curve = ed25519_members();
        other_curve[2].1 = int(1);
        assert_eq!(refusal(other_curve), CeremonyError::UnsupportedAlgorithm);
        // A coordinate of the wrong type or length.
        let mut text_x = ed25519_members();
        text_x[3].1 = Value::Text("x".into());
        assert_eq!(
            refusal(text_x),
            CeremonyError::Malformed("COSE key coordinates")
        );
        let mut short_x = ed25519_members();
        short_x[3].1 = Value::Bytes(vec![1; 31]);
        assert_eq!(
            refusal(short_x),
            CeremonyError::Malformed("COSE key coordinates")
        );
        // Not a map at all.
        assert_eq!(
            CredentialKey::from_cose(&encode(&int(1))).unwrap_err(),
            CeremonyError::UnsupportedAlgorithm
        );
    }

    #[test]
    fn malformed_cbor_keys_are_malformed() {
        let good = encode(&Value::Map(ed25519_members()));
        let mut trailing = good.clone();
        trailing.push(0);
        let mut indefinite = good.clone();
        indefinite[0] = 0xbf;
        indefinite.push(0xff);
        for bytes in [
            &good[..good.len() - 1],
            &trailing[..],
            &indefinite[..],
            &[][..],
            &[0xc1, 0xa0][..],
        ] {
            assert_eq!(
                CredentialKey::from_cose(bytes).unwrap_err(),
                CeremonyError::Malformed("COSE key"),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn authenticator_data_with_a_broken_key_or_extension_is_malformed() {
        let mut ad = vec![0u8; 32];
        ad.push(FLAG_UP | FLAG_AT);
        ad.extend([0, 0, 0, 1]);
        ad.extend([0u8; 16]);
        ad.extend(2u16.to_be_bytes());
        ad.extend([9, 9]);
        let key = encode(&Value::Map(ed25519_members()));
        let mut ok = ad.clone();
        ok.extend(&key);
        assert!(AuthData::parse(&ok).is_ok());
        let mut truncated = ad.clone();
        truncated.extend(&key[..key.len() - 3]);
        assert_eq!(
            AuthData::parse(&truncated).unwrap_err(),
            CeremonyError::Malformed("COSE key")
        );
        // Extension data that is not a map, or that runs short.
        for ext in [&[0x01][..], &[0xa1, 0x01][..], &[0xbf, 0xff][..]] {
            let mut with_ext = ok.clone();
            with_ext[32] |= FLAG_ED;
            with_ext.extend(ext);
            assert_eq!(
                AuthData::parse(&with_ext).unwrap_err(),
                CeremonyError::Malformed("authenticatorData"),
                "{ext:02x?}"
            );
        }
        let mut with_ext = ok.clone();
        with_ext[32] |= FLAG_ED;
        with_ext.extend([0xa1, 0x61, 0x78, 0xf5]);
        assert!(AuthData::parse(&with_ext).is_ok());
    }
}
