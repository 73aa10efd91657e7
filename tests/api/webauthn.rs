//! Passkeys (NFR-SEC-003) over HTTP, with a software authenticator written here: real P-256 and
//! Ed25519 keys, CBOR by ciborium, signatures over `authData || SHA-256(clientDataJSON)`.
//! Registration by a signed-in user, passwordless sign-in, the passkey as second factor after
//! the password, the sign-count rule, and tenant isolation.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ciborium::Value as Cbor;
use p256::ecdsa::signature::Signer as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{assert_problem, send, str_of, ApiResponse, TestApp};

crate::contract_tests![
    register_a_passkey_and_sign_in_without_password_nfr_sec_003,
    passkey_is_the_second_factor_after_the_password_nfr_sec_003,
    sign_count_regression_is_refused_nfr_sec_003,
    another_tenants_passkey_is_not_found_nfr_sec_003,
    passkey_on_the_login_page_second_factor_nfr_sec_003,
];

const PASSWORD: &str = "correct horse battery staple";
const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_AT: u8 = 0x40;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(bytes)
}

/// A tenant whose owner accepted the invitation with [`PASSWORD`].
struct Owner {
    tenant_id: String,
    domain: String,
    email: String,
}

fn owner(app: &TestApp) -> Result<Owner, String> {
    let op = app.operator_token("operator", "e2e-operator")?;
    let suffix: String = random_bytes::<5>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let domain = format!("pk-{suffix}");
    let email = format!("owner@{domain}.example");
    let body =
        json!({ "name": "Passkey Corp", "domain": domain, "plan": "pro", "owner_email": email });
    let created = send(app, "POST", "/v1/tenants", Some(&op), Some(&body))?.expect_json(201)?;
    let link = str_of(&created["invitation_link"]);
    let token = link
        .split_once("token=")
        .map(|(_, t)| t.to_owned())
        .ok_or_else(|| format!("no token in the invitation link {link:?}"))?;
    let body = json!({ "token": token, "password": PASSWORD });
    send(app, "POST", "/v1/invitations/accept", None, Some(&body))?.expect_json(200)?;
    Ok(Owner {
        tenant_id: str_of(&created["tenant"]["id"]),
        domain,
        email,
    })
}

fn password_login(app: &TestApp, o: &Owner) -> Result<ApiResponse, String> {
    let body = json!({ "tenant": o.domain, "email": o.email, "password": PASSWORD });
    send(app, "POST", "/v1/auth/login", None, Some(&body))
}

fn access_token(app: &TestApp, o: &Owner) -> Result<String, String> {
    Ok(str_of(
        &password_login(app, o)?.expect_json(200)?["access_token"],
    ))
}

enum Key {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

/// A software authenticator holding one credential.
struct Authenticator {
    key: Key,
    credential_id: Vec<u8>,
    counter: u32,
}

fn int(i: i64) -> Cbor {
    Cbor::Integer(i.into())
}

fn cbor(v: &Cbor) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).map_err(|e| format!("CBOR: {e}"))?;
    Ok(out)
}

/// `SEQUENCE { INTEGER r, INTEGER s }` of a 64-byte `r || s` (WebAuthn's ES256 signatures).
fn der(raw: &[u8]) -> Vec<u8> {
    let integer = |b: &[u8]| {
        let mut b: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
        if b.first().is_none_or(|x| x & 0x80 != 0) {
            b.insert(0, 0);
        }
        let mut out = vec![0x02, b.len() as u8];
        out.extend(b);
        out
    };
    let (r, s) = raw.split_at(32);
    let mut body = integer(r);
    body.extend(integer(s));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

impl Authenticator {
    fn es256() -> Result<Self, String> {
        let key = p256::ecdsa::SigningKey::from_bytes(&random_bytes::<32>()?.into())
            .map_err(|e| format!("P-256 key: {e}"))?;
        Ok(Authenticator {
            key: Key::Es256(key),
            credential_id: random_bytes::<32>()?.to_vec(),
            counter: 0,
        })
    }

    fn eddsa() -> Result<Self, String> {
        Ok(Authenticator {
            key: Key::EdDsa(ed25519_dalek::SigningKey::from_bytes(&random_bytes::<32>()?)),
            credential_id: random_bytes::<16>()?.to_vec(),
            counter: 0,
        })
    }

    fn cose_key(&self) -> Result<Vec<u8>, String> {
        let v = match &self.key {
            Key::Es256(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                let (x, y) = p.x().zip(p.y()).ok_or("an uncompressed point")?;
                Cbor::Map(vec![
                    (int(1), int(2)),
                    (int(3), int(-7)),
                    (int(-1), int(1)),
                    (int(-2), Cbor::Bytes(x.to_vec())),
                    (int(-3), Cbor::Bytes(y.to_vec())),
                ])
            }
            Key::EdDsa(k) => Cbor::Map(vec![
                (int(1), int(1)),
                (int(3), int(-8)),
                (int(-1), int(6)),
                (int(-2), Cbor::Bytes(k.verifying_key().as_bytes().to_vec())),
            ]),
        };
        cbor(&v)
    }

    fn auth_data(&self, rp_id: &str, flags: u8, attested: Option<&[u8]>) -> Vec<u8> {
        let mut out = Sha256::digest(rp_id.as_bytes()).to_vec();
        out.push(flags | if attested.is_some() { FLAG_AT } else { 0 });
        out.extend(self.counter.to_be_bytes());
        if let Some(key) = attested {
            out.extend([0u8; 16]);
            out.extend((self.credential_id.len() as u16).to_be_bytes());
            out.extend(&self.credential_id);
            out.extend(key);
        }
        out
    }

    /// Answers creation options as `PublicKeyCredential.toJSON()` would.
    fn create(&self, options: &Value) -> Result<Value, String> {
        let pk = &options["publicKey"];
        let client_data = json!({
            "type": "webauthn.create", "challenge": pk["challenge"],
            "origin": options["origin"], "crossOrigin": false,
        })
        .to_string();
        let att = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (
                Cbor::Text("authData".into()),
                Cbor::Bytes(self.auth_data(
                    pk["rp"]["id"].as_str().unwrap_or_default(),
                    FLAG_UP | FLAG_UV,
                    Some(&self.cose_key()?),
                )),
            ),
        ]);
        let id = b64(&self.credential_id);
        Ok(json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data.as_bytes()),
                "attestationObject": b64(&cbor(&att)?),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }))
    }

    /// Answers request options (the counter moves first, as authenticators do).
    fn get(&mut self, options: &Value, user_handle: Option<&str>) -> Value {
        self.counter += 1;
        let pk = &options["publicKey"];
        let client_data = json!({
            "type": "webauthn.get", "challenge": pk["challenge"],
            "origin": options["origin"], "crossOrigin": false,
        })
        .to_string();
        let auth_data = self.auth_data(
            pk["rpId"].as_str().unwrap_or_default(),
            FLAG_UP | FLAG_UV,
            None,
        );
        let mut message = auth_data.clone();
        message.extend(Sha256::digest(client_data.as_bytes()));
        let signature = match &self.key {
            Key::Es256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(&message);
                der(&sig.to_bytes())
            }
            Key::EdDsa(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(&message).to_bytes().to_vec()
            }
        };
        let id = b64(&self.credential_id);
        json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data.as_bytes()),
                "authenticatorData": b64(&auth_data),
                "signature": b64(&signature),
                "userHandle": user_handle.map(|u| b64(u.as_bytes())),
            },
            "clientExtensionResults": {},
        })
    }
}

/// Registers `a` for the user of `access`; returns the stored passkey.
fn register(app: &TestApp, access: &str, a: &Authenticator) -> Result<Value, String> {
    let options = send(
        app,
        "POST",
        "/v1/auth/webauthn/register/options",
        Some(access),
        None,
    )?
    .expect_json(200)?;
    let pk = &options["publicKey"];
    ensure_eq!(
        pk["pubKeyCredParams"],
        json!([{"type": "public-key", "alg": -8}, {"type": "public-key", "alg": -7}]),
        "EdDSA and ES256: {options}"
    );
    ensure_eq!(str_of(&pk["attestation"]), "none", "{options}");
    let body =
        json!({ "flow": options["flow"], "credential": a.create(&options)?, "name": "laptop" });
    send(
        app,
        "POST",
        "/v1/auth/webauthn/register/verify",
        Some(access),
        Some(&body),
    )?
    .expect_json(201)
}

fn login_options(app: &TestApp, domain: &str, email: Option<&str>) -> Result<Value, String> {
    let body = match email {
        Some(e) => json!({ "tenant": domain, "email": e }),
        None => json!({ "tenant": domain }),
    };
    send(
        app,
        "POST",
        "/v1/auth/webauthn/login/options",
        None,
        Some(&body),
    )?
    .expect_json(200)
}

fn passwordless(app: &TestApp, options: &Value, credential: &Value) -> Result<ApiResponse, String> {
    let body = json!({ "flow": options["flow"], "credential": credential });
    send(
        app,
        "POST",
        "/v1/auth/webauthn/login/verify",
        None,
        Some(&body),
    )
}

fn user_id_of(access: &str) -> Result<String, String> {
    let payload = access.split('.').nth(1).ok_or("a JWT")?;
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|e| format!("JWT payload: {e}"))?,
    )
    .map_err(|e| format!("JWT claims: {e}"))?;
    Ok(str_of(&claims["sub"]))
}

fn register_a_passkey_and_sign_in_without_password_nfr_sec_003(
    app: &TestApp,
) -> Result<(), String> {
    let o = owner(app)?;
    let access = access_token(app, &o)?;
    let mut a = Authenticator::eddsa()?;
    let stored = register(app, &access, &a)?;
    ensure_eq!(str_of(&stored["algorithm"]), "EdDSA", "{stored}");
    ensure_eq!(
        str_of(&stored["credential_id"]),
        b64(&a.credential_id),
        "{stored}"
    );
    let list = send(
        app,
        "GET",
        "/v1/auth/webauthn/credentials",
        Some(&access),
        None,
    )?
    .expect_json(200)?;
    ensure_eq!(list["items"], json!([stored.clone()]), "listed");

    // With the email: allowCredentials names the passkey; UV is required.
    let options = login_options(app, &o.domain, Some(&o.email))?;
    ensure_eq!(
        str_of(&options["publicKey"]["allowCredentials"][0]["id"]),
        b64(&a.credential_id),
        "{options}"
    );
    ensure_eq!(
        str_of(&options["publicKey"]["userVerification"]),
        "required",
        "{options}"
    );
    let credential = a.get(&options, None);
    let resp = passwordless(app, &options, &credential)?;
    ensure_eq!(resp.header("cache-control"), Some("no-store"), "tokens");
    let pair = resp.expect_json(200)?;
    ensure_eq!(str_of(&pair["token_type"]), "Bearer", "{pair}");
    let fresh = str_of(&pair["access_token"]);
    send(
        app,
        "GET",
        "/v1/auth/webauthn/credentials",
        Some(&fresh),
        None,
    )?
    .expect_status(200)?;
    // The challenge was used: the same answer again is refused.
    let resp = passwordless(app, &options, &credential)?;
    assert_problem(&resp, 401, "invalid-credentials")?;

    // Without the email: a discoverable credential names its user.
    let user_id = user_id_of(&access)?;
    let options = login_options(app, &o.domain, None)?;
    let credential = a.get(&options, Some(&user_id));
    passwordless(app, &options, &credential)?.expect_status(200)?;

    // An unknown email gets options too, with stand-ins shaped like real credentials (one to a
    // few, ids of the lengths authenticators make), the same on every request.
    let options = login_options(app, &o.domain, Some("nobody@nowhere.example"))?;
    let allow = options["publicKey"]["allowCredentials"].clone();
    let ids = allow.as_array().cloned().unwrap_or_default();
    ensure!((1..=3).contains(&ids.len()), "{options}");
    for d in &ids {
        ensure_eq!(str_of(&d["type"]), "public-key", "{d}");
        let len = URL_SAFE_NO_PAD
            .decode(str_of(&d["id"]))
            .map_err(|e| format!("stand-in id is not base64url: {e}"))?
            .len();
        ensure!(
            [16, 20, 32, 48, 64].contains(&len),
            "stand-in id of {len} bytes"
        );
    }
    let again = login_options(app, &o.domain, Some("nobody@nowhere.example"))?;
    ensure_eq!(
        again["publicKey"]["allowCredentials"],
        allow,
        "the same stand-ins again"
    );
    Ok(())
}

fn passkey_is_the_second_factor_after_the_password_nfr_sec_003(
    app: &TestApp,
) -> Result<(), String> {
    let o = owner(app)?;
    let access = access_token(app, &o)?;
    let mut a = Authenticator::es256()?;
    register(app, &access, &a)?;
    let p = assert_problem(&password_login(app, &o)?, 401, "mfa-required")?;
    let mfa_token = str_of(&p["mfa_token"]);
    let body = json!({ "mfa_token": mfa_token });
    let options = send(
        app,
        "POST",
        "/v1/auth/mfa/webauthn/options",
        None,
        Some(&body),
    )?
    .expect_json(200)?;
    ensure_eq!(
        str_of(&options["publicKey"]["allowCredentials"][0]["id"]),
        b64(&a.credential_id),
        "{options}"
    );
    let assertion = a.get(&options, None);
    // Both a code and an assertion: refused before any check.
    let both = json!({ "mfa_token": mfa_token, "code": "123456", "webauthn": assertion });
    let resp = send(app, "POST", "/v1/auth/mfa/verify", None, Some(&both))?;
    assert_problem(&resp, 400, "invalid-input")?;
    let body = json!({ "mfa_token": mfa_token, "webauthn": assertion });
    let pair = send(app, "POST", "/v1/auth/mfa/verify", None, Some(&body))?.expect_json(200)?;
    ensure!(
        !str_of(&pair["access_token"]).is_empty(),
        "tokens after the passkey: {pair}"
    );
    // The pending sign-in is used up.
    let resp = send(app, "POST", "/v1/auth/mfa/verify", None, Some(&body))?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    Ok(())
}

fn sign_count_regression_is_refused_nfr_sec_003(app: &TestApp) -> Result<(), String> {
    let o = owner(app)?;
    let access = access_token(app, &o)?;
    let mut a = Authenticator::es256()?;
    register(app, &access, &a)?;
    a.counter = 41;
    let options = login_options(app, &o.domain, Some(&o.email))?;
    let credential = a.get(&options, None);
    passwordless(app, &options, &credential)?.expect_status(200)?;
    // A clone of the authenticator, behind the stored count of 42.
    a.counter = 10;
    let options = login_options(app, &o.domain, Some(&o.email))?;
    let credential = a.get(&options, None);
    let p = assert_problem(
        &passwordless(app, &options, &credential)?,
        401,
        "invalid-credentials",
    )?;
    ensure_eq!(str_of(&p["reason"]), "webauthn_possible_clone", "{p}");
    // The real authenticator, ahead of it, still signs in.
    a.counter = 50;
    let options = login_options(app, &o.domain, Some(&o.email))?;
    let credential = a.get(&options, None);
    passwordless(app, &options, &credential)?.expect_status(200)?;
    Ok(())
}

fn another_tenants_passkey_is_not_found_nfr_sec_003(app: &TestApp) -> Result<(), String> {
    let acme = owner(app)?;
    let globex = owner(app)?;
    let acme_access = access_token(app, &acme)?;
    let globex_access = access_token(app, &globex)?;
    let mut a = Authenticator::eddsa()?;
    let stored = register(app, &globex_access, &a)?;
    let id = str_of(&stored["id"]);
    // Globex's passkey does not sign in to Acme.
    let options = login_options(app, &acme.domain, None)?;
    let user_id = user_id_of(&globex_access)?;
    let credential = a.get(&options, Some(&user_id));
    assert_problem(
        &passwordless(app, &options, &credential)?,
        401,
        "invalid-credentials",
    )?;
    // Nor can Acme's owner see or delete it.
    let path = format!("/v1/auth/webauthn/credentials/{id}");
    let resp = send(app, "DELETE", &path, Some(&acme_access), None)?;
    assert_problem(&resp, 404, "not-found")?;
    let list = send(
        app,
        "GET",
        "/v1/auth/webauthn/credentials",
        Some(&acme_access),
        None,
    )?
    .expect_json(200)?;
    ensure_eq!(list["items"], json!([]), "Acme lists none");
    // A suspended tenant's passkey sign-in is refused like its password sign-in.
    let op = app.operator_token("operator", "e2e-operator")?;
    let suspend = format!("/v1/tenants/{}/suspend", globex.tenant_id);
    send(app, "POST", &suspend, Some(&op), None)?.expect_json(200)?;
    let options = login_options(app, &globex.domain, None)?;
    let credential = a.get(&options, Some(&user_id));
    assert_problem(
        &passwordless(app, &options, &credential)?,
        403,
        "access-denied",
    )?;
    let activate = format!("/v1/tenants/{}/activate", globex.tenant_id);
    send(app, "POST", &activate, Some(&op), None)?.expect_json(200)?;
    // Active again: its owner signs in with it, deletes it, and then it is gone.
    let options = login_options(app, &globex.domain, None)?;
    let credential = a.get(&options, Some(&user_id));
    let pair = passwordless(app, &options, &credential)?.expect_json(200)?;
    let fresh = str_of(&pair["access_token"]);
    send(app, "DELETE", &path, Some(&fresh), None)?.expect_status(204)?;
    let resp = send(app, "DELETE", &path, Some(&fresh), None)?;
    assert_problem(&resp, 404, "not-found")?;
    // Without a passkey, the password alone signs in again.
    password_login(app, &globex)?.expect_status(200)?;
    Ok(())
}

fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let pairs: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    pairs.join("&").into_bytes()
}

/// The value of attribute `attr` after the first `needle` in `html`, HTML entities decoded.
fn attribute(html: &str, needle: &str, attr: &str) -> Result<String, String> {
    let at = html
        .find(needle)
        .ok_or_else(|| format!("no {needle} in the page: {html}"))?;
    let key = format!("{attr}=\"");
    let start = html[at..]
        .find(&key)
        .ok_or_else(|| format!("no {attr} after {needle}"))?
        + at
        + key.len();
    let len = html[start..].find('"').ok_or("unterminated attribute")?;
    Ok(html[start..start + len]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&"))
}

/// The universal login page offers a user with a passkey the passkey as second factor: the
/// step carries the request options and loads its one script (CSP `script-src 'self'`, nothing
/// inline); the posted assertion completes the sign-in with a code for the app.
fn passkey_on_the_login_page_second_factor_nfr_sec_003(app: &TestApp) -> Result<(), String> {
    const REDIRECT: &str = "http://127.0.0.1:9/pk-app/callback";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let op = app.operator_token("operator", "e2e-operator")?;
    let body = json!({ "name": "Passkey App", "redirect_uris": [REDIRECT] });
    let client_id =
        str_of(&send(app, "POST", "/v1/apps", Some(&op), Some(&body))?.expect_json(201)?["id"]);
    let o = owner(app)?;
    let path = format!("/v1/tenants/{}/apps/{client_id}", o.tenant_id);
    let enabled = send(app, "POST", &path, Some(&op), None)?;
    ensure!(
        enabled.status < 300,
        "enable the app: {}",
        enabled.excerpt()
    );
    let mut a = Authenticator::eddsa()?;
    register(app, &access_token(app, &o)?, &a)?;

    let authorize = format!(
        "/oauth/authorize?{}",
        String::from_utf8_lossy(&form(&[
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "pk-state"),
            ("nonce", "pk-nonce"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("tenant", &o.domain),
        ]))
    );
    let page = app.get(&authorize)?;
    ensure_eq!(page.status, 200, "login page: {}", page.excerpt());
    let html = page.text();
    let flow = attribute(&html, "name=\"flow\"", "value")?;
    let csrf = attribute(&html, "name=\"csrf\"", "value")?;
    let cookie = page
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("ep_csrf_"))
        .and_then(|c| c.split(';').next())
        .ok_or("no CSRF cookie")?
        .to_owned();
    let post = |path: &str, fields: &[(&str, &str)]| {
        app.request(
            "POST",
            path,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", cookie.as_str()),
            ],
            Some(form(fields)),
        )
    };
    let resp = post(
        "/oauth/authorize/login",
        &[
            ("flow", &flow),
            ("csrf", &csrf),
            ("email", &o.email),
            ("password", PASSWORD),
        ],
    )?;
    ensure_eq!(
        resp.status,
        200,
        "the second-factor step: {}",
        resp.excerpt()
    );
    let csp = resp
        .header("content-security-policy")
        .unwrap_or_default()
        .to_owned();
    ensure!(
        csp.contains("script-src 'self';"),
        "the step may load its own script: {csp}"
    );
    let html = resp.text();
    ensure!(
        html.contains("<script src=\"/oauth/assets/passkey.js\" defer></script>")
            && html.matches("<script").count() == 1,
        "one external script, nothing inline: {html}"
    );
    ensure!(
        html.contains("name=\"code\""),
        "the code form stays: {html}"
    );
    let mfa_token = attribute(&html, "name=\"mfa_token\"", "value")?;
    let options: Value = serde_json::from_str(&attribute(&html, "id=\"passkey\"", "data-options")?)
        .map_err(|e| format!("passkey options: {e}"))?;
    ensure_eq!(
        str_of(&options["publicKey"]["allowCredentials"][0]["id"]),
        b64(&a.credential_id),
        "{options}"
    );
    let js = app.get("/oauth/assets/passkey.js")?;
    ensure_eq!(js.status, 200, "script");
    ensure_eq!(
        js.media_type(),
        Some("text/javascript".to_owned()),
        "script type"
    );

    // A garbled answer shows the step again; the real assertion signs in.
    let resp = post(
        "/oauth/authorize/mfa",
        &[
            ("flow", &flow),
            ("csrf", &csrf),
            ("mfa_token", &mfa_token),
            ("webauthn", "{not json"),
        ],
    )?;
    ensure_eq!(resp.status, 400, "garbled assertion: {}", resp.excerpt());
    let options: Value =
        serde_json::from_str(&attribute(&resp.text(), "id=\"passkey\"", "data-options")?)
            .map_err(|e| format!("fresh passkey options: {e}"))?;
    let assertion = a.get(&options, None).to_string();
    let resp = post(
        "/oauth/authorize/mfa",
        &[
            ("flow", &flow),
            ("csrf", &csrf),
            ("mfa_token", &mfa_token),
            ("webauthn", &assertion),
        ],
    )?;
    ensure_eq!(
        resp.status,
        303,
        "signed in with the passkey: {}",
        resp.excerpt()
    );
    let location = resp.header("location").unwrap_or_default();
    ensure!(
        location.starts_with(&format!("{REDIRECT}?code=")) && location.contains("state=pk-state"),
        "{location}"
    );
    Ok(())
}
