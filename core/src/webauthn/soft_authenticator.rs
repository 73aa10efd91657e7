//! A software authenticator for tests: real P-256 and Ed25519 keys, CBOR written by
//! ciborium's encoder (not by the decoding path under test), and knobs to misbehave. The
//! passkey tests and the console's use it.

use ciborium::Value as Cbor;
use p256::ecdsa::signature::Signer as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::verify::{FLAG_AT, FLAG_UP, FLAG_UV};
use crate::crypto::b64url_encode;

/// The relying party an authenticator answers for unless told otherwise.
pub(crate) const RP_ID: &str = "login.acme.test";
/// The origin its client data names unless told otherwise.
pub(crate) const ORIGIN: &str = "https://login.acme.test";

/// A key the software authenticator holds.
pub(crate) enum Key {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

/// A software authenticator: one credential, a counter, and knobs to misbehave.
pub(crate) struct Authenticator {
    pub(crate) key: Key,
    pub(crate) credential_id: Vec<u8>,
    pub(crate) counter: u32,
    pub(crate) rp_id: String,
    pub(crate) origin: String,
    pub(crate) flags: u8,
    pub(crate) fmt: &'static str,
}

pub(crate) fn int(i: i64) -> Cbor {
    Cbor::Integer(i.into())
}

pub(crate) fn cbor_bytes(v: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

/// `SEQUENCE { INTEGER r, INTEGER s }` of a 64-byte `r || s`.
fn der(raw: &[u8]) -> Vec<u8> {
    let integer = |b: &[u8]| {
        let mut b: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
        if b.is_empty() || b[0] & 0x80 != 0 {
            b.insert(0, 0);
        }
        let mut out = vec![0x02, b.len() as u8];
        out.extend(b);
        out
    };
    let mut body = integer(&raw[..32]);
    body.extend(integer(&raw[32..]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

impl Authenticator {
    pub(crate) fn es256(seed: u8) -> Self {
        Self::with(Key::Es256(
            p256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).unwrap(),
        ))
    }

    pub(crate) fn eddsa(seed: u8) -> Self {
        Self::with(Key::EdDsa(ed25519_dalek::SigningKey::from_bytes(
            &[seed; 32],
        )))
    }

    pub(crate) fn with(key: Key) -> Self {
        let seed = match &key {
            Key::Es256(k) => k.verifying_key().to_encoded_point(false).as_bytes()[1],
            Key::EdDsa(k) => k.verifying_key().as_bytes()[0],
        };
        Authenticator {
            key,
            credential_id: vec![seed; 20],
            counter: 0,
            rp_id: RP_ID.into(),
            origin: ORIGIN.into(),
            flags: FLAG_UP | FLAG_UV,
            fmt: "none",
        }
    }

    pub(crate) fn cose_key(&self) -> Vec<u8> {
        let v = match &self.key {
            Key::Es256(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                Cbor::Map(vec![
                    (int(1), int(2)),
                    (int(3), int(-7)),
                    (int(-1), int(1)),
                    (int(-2), Cbor::Bytes(p.x().unwrap().to_vec())),
                    (int(-3), Cbor::Bytes(p.y().unwrap().to_vec())),
                ])
            }
            Key::EdDsa(k) => Cbor::Map(vec![
                (int(1), int(1)),
                (int(3), int(-8)),
                (int(-1), int(6)),
                (int(-2), Cbor::Bytes(k.verifying_key().as_bytes().to_vec())),
            ]),
        };
        cbor_bytes(&v)
    }

    pub(crate) fn auth_data(&self, attested: Option<&[u8]>) -> Vec<u8> {
        let mut out = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        let at = if attested.is_some() { FLAG_AT } else { 0 };
        out.push(self.flags | at);
        out.extend(self.counter.to_be_bytes());
        if let Some(key) = attested {
            out.extend([0u8; 16]);
            out.extend((self.credential_id.len() as u16).to_be_bytes());
            out.extend(&self.credential_id);
            out.extend(key);
        }
        out
    }

    pub(crate) fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false,
        }))
        .unwrap()
    }

    /// `navigator.credentials.create()` answered, as `toJSON()` gives it.
    pub(crate) fn register_with_key(&self, challenge: &str, cose_key: &[u8]) -> Value {
        let att = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text(self.fmt.into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (
                Cbor::Text("authData".into()),
                Cbor::Bytes(self.auth_data(Some(cose_key))),
            ),
        ]);
        let id = b64url_encode(&self.credential_id);
        json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "clientDataJSON": b64url_encode(&self.client_data("webauthn.create", challenge)),
                "attestationObject": b64url_encode(&cbor_bytes(&att)),
                "transports": ["internal", "hybrid", "bogus"],
            },
            "clientExtensionResults": {},
        })
    }

    pub(crate) fn register(&self, challenge: &str) -> Value {
        self.register_with_key(challenge, &self.cose_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.key {
            Key::Es256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                der(&sig.to_bytes())
            }
            Key::EdDsa(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(message).to_bytes().to_vec()
            }
        }
    }

    /// `navigator.credentials.get()` answered; the counter moves first, as authenticators do.
    pub(crate) fn assert(&mut self, challenge: &str, user_handle: Option<&str>) -> Value {
        self.counter += 1;
        let auth_data = self.auth_data(None);
        let client_data = self.client_data("webauthn.get", challenge);
        let mut message = auth_data.clone();
        message.extend(Sha256::digest(&client_data));
        let id = b64url_encode(&self.credential_id);
        json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "clientDataJSON": b64url_encode(&client_data),
                "authenticatorData": b64url_encode(&auth_data),
                "signature": b64url_encode(&self.sign(&message)),
                "userHandle": user_handle.map(|u| b64url_encode(u.as_bytes())),
            },
            "clientExtensionResults": {},
        })
    }
}
