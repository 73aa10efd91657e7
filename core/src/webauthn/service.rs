//! Passkey ceremonies over storage (NFR-SEC-003): options with a pending challenge, registration,
//! the credential list, passwordless sign-in and the second-factor check.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use utoipa::ToSchema;

use super::verify::{
    self, assertion_credential_id, assertion_user_handle, AuthenticationResponse, CeremonyError,
    CredentialKey, Expected, RegistrationResponse,
};
use crate::audit::{self, Actor, AuditRecord};
use crate::crypto::{self, b64url_decode, b64url_encode, sha256_hex};
use crate::ids;
use crate::kernel::schema::string_enum;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Random, Secrets, Sql, SqlError, Stmt};
use crate::risk::{self, SignInContext};
use crate::sessions::{self, IssueError, SessionUser, TokenPair};
use crate::throttle;
use crate::tokens::master_key::MASTER_KEY_SECRET;
use crate::tokens::SigningKeyError;

/// How long a ceremony may take: 5 minutes.
pub const FLOW_TTL_MS: i64 = 5 * 60 * 1000;
/// Most passkeys one user may register.
pub const MAX_CREDENTIALS_PER_USER: usize = 20;
/// Bytes of a challenge (WebAuthn asks for at least 16).
const CHALLENGE_BYTES: usize = 32;

/// Why a passkey operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebAuthnError {
    /// `WEBAUTHN_RP_ID`/`WEBAUTHN_ORIGIN` are missing (outside development) or disagree.
    #[error("passkeys are not configured (WEBAUTHN_RP_ID, WEBAUTHN_ORIGIN)")]
    NotConfigured,
    /// Unknown, used, expired or foreign flow: request new options.
    #[error("the passkey challenge is unknown, used or expired: request new options")]
    InvalidFlow,
    /// The response fails a ceremony check.
    #[error(transparent)]
    Ceremony(#[from] CeremonyError),
    /// This credential is already registered.
    #[error("this passkey is already registered")]
    CredentialExists,
    /// The user has as many passkeys as allowed.
    #[error("at most {MAX_CREDENTIALS_PER_USER} passkeys per user")]
    TooManyCredentials,
    /// No such passkey of the signed-in user (another user's or tenant's is not found either).
    #[error("no such passkey")]
    NotFound,
    /// The user of a pending sign-in has no passkey.
    #[error("the user has no passkey")]
    NoPasskey,
    /// The credential is no passkey of an active user of this tenant: never says which.
    #[error("the passkey is not recognised")]
    UnknownCredential,
    /// The sign count did not increase: the authenticator may have been cloned.
    #[error("the passkey's signature counter went backwards: possible cloned authenticator")]
    PossibleClone,
    /// The passkey is right but the tenant is suspended or being deleted.
    #[error("the tenant is not active")]
    TenantNotActive,
    /// Too many failed attempts (ERR-RATE-429).
    #[error("too many failed passkey sign-ins")]
    RateLimited {
        /// Seconds until the window ends.
        retry_after_secs: i64,
    },
    /// No signing key is usable.
    #[error(transparent)]
    Signing(#[from] SigningKeyError),
    /// The database failed.
    #[error("passkey storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl WebAuthnError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            WebAuthnError::NotConfigured => "webauthn_not_configured",
            WebAuthnError::InvalidFlow => "webauthn_flow_invalid",
            WebAuthnError::Ceremony(e) => e.code(),
            WebAuthnError::CredentialExists => "webauthn_credential_exists",
            WebAuthnError::TooManyCredentials => "webauthn_too_many_credentials",
            WebAuthnError::NotFound => "webauthn_credential_not_found",
            WebAuthnError::NoPasskey => "webauthn_no_passkey",
            WebAuthnError::UnknownCredential => "webauthn_unknown_credential",
            WebAuthnError::PossibleClone => "webauthn_possible_clone",
            WebAuthnError::TenantNotActive => "tenant_not_active",
            WebAuthnError::RateLimited { .. } => "rate_limited",
            WebAuthnError::Signing(e) => e.code(),
            WebAuthnError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            WebAuthnError::NotConfigured => ErrorKind::Unavailable,
            WebAuthnError::InvalidFlow => ErrorKind::Unauthenticated,
            WebAuthnError::Ceremony(_) => ErrorKind::Unauthenticated,
            WebAuthnError::CredentialExists => ErrorKind::Conflict,
            WebAuthnError::TooManyCredentials => ErrorKind::Refused,
            WebAuthnError::NotFound => ErrorKind::NotFound,
            WebAuthnError::NoPasskey => ErrorKind::Conflict,
            WebAuthnError::UnknownCredential => ErrorKind::Unauthenticated,
            WebAuthnError::PossibleClone => ErrorKind::Unauthenticated,
            WebAuthnError::TenantNotActive => ErrorKind::Forbidden,
            WebAuthnError::RateLimited { retry_after_secs } => ErrorKind::RateLimited {
                retry_after_secs: *retry_after_secs,
            },
            WebAuthnError::Signing(e) => e.kind(),
            WebAuthnError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(WebAuthnError);

impl From<IssueError> for WebAuthnError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Signing(e) => WebAuthnError::Signing(e),
            IssueError::Storage(e) => WebAuthnError::Storage(e),
            IssueError::NotActive => WebAuthnError::TenantNotActive,
        }
    }
}

/// The relying party passkeys are bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// RP id: the origin's host or a registrable suffix of it.
    pub id: String,
    /// The exact origin pages run on (`https://login.example.com`).
    pub origin: String,
}

/// The host of `scheme://host[:port]`, lowercase.
fn origin_host(origin: &str) -> Option<String> {
    let rest = origin.split_once("://")?.1;
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split_once(']')?.0
    } else {
        rest.split(':').next()?
    };
    (!host.is_empty() && !rest.contains('/')).then(|| host.to_ascii_lowercase())
}

impl RelyingParty {
    /// From `WEBAUTHN_ORIGIN` and `WEBAUTHN_RP_ID` (the RP id defaults to the origin's host);
    /// in development a missing origin is the request's (`request_origin`). The origin's host
    /// must be the RP id or a subdomain of it.
    pub fn configured<S: Secrets + ?Sized>(
        secrets: &S,
        request_origin: &str,
    ) -> Result<RelyingParty, WebAuthnError> {
        let get = |k: &str| secrets.get(k).filter(|v| !v.trim().is_empty());
        let development = secrets.get("EDGEPLANE_ENV").as_deref() == Some("development");
        let origin = match get("WEBAUTHN_ORIGIN") {
            Some(o) => o.trim().trim_end_matches('/').to_owned(),
            None if development => request_origin.trim_end_matches('/').to_owned(),
            None => return Err(WebAuthnError::NotConfigured),
        };
        let host = origin_host(&origin).ok_or(WebAuthnError::NotConfigured)?;
        let id = get("WEBAUTHN_RP_ID")
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_else(|| host.clone());
        if host != id && !host.ends_with(&format!(".{id}")) {
            return Err(WebAuthnError::NotConfigured);
        }
        Ok(RelyingParty { id, origin })
    }
}

/// Options for `navigator.credentials.create()` or `.get()` in the WebAuthn JSON
/// serialisation (`PublicKeyCredential.parseCreationOptionsFromJSON` /
/// `parseRequestOptionsFromJSON` take `publicKey` as is), with the flow to answer with.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = WebAuthnOptions)]
pub struct Options {
    /// Handle of the pending ceremony, sent back with the response (absent for the second
    /// factor: the `mfa_token` plays that part).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    pub flow: Option<String>,
    /// Seconds the single-use challenge stays valid.
    pub expires_in: i64,
    /// The origin the ceremony must run on (`WEBAUTHN_ORIGIN`).
    pub origin: String,
    /// `PublicKeyCredentialCreationOptionsJSON` (pubKeyCredParams EdDSA -8 and ES256 -7,
    /// attestation none, residentKey and userVerification preferred, excludeCredentials) or
    /// `PublicKeyCredentialRequestOptionsJSON` (rpId, challenge, allowCredentials,
    /// userVerification).
    #[serde(rename = "publicKey")]
    #[schema(schema_with = public_key_options_schema)]
    pub public_key: serde_json::Value,
}

/// Any JSON object: the options follow the WebAuthn dictionaries, not a schema of ours.
fn public_key_options_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::<
            utoipa::openapi::schema::Schema,
        >::FreeForm(true)))
        .build()
}

/// A registered passkey, as listed to its owner. (Only serialized: `deny_unknown_fields`
/// closes its schema to other properties.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebAuthnCredential)]
pub struct CredentialSummary {
    /// Edgeplane's id of the passkey (for DELETE).
    pub id: String,
    /// The WebAuthn credential id, base64url without padding.
    pub credential_id: String,
    /// The owner's label, or null.
    #[schema(required = true)]
    pub name: Option<String>,
    /// `ES256` or `EdDSA`; `unknown` for a stored key that no longer reads as either.
    #[schema(schema_with = algorithm_schema)]
    pub algorithm: &'static str,
    /// Transport hints.
    pub transports: Vec<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last sign-in with it, or null.
    #[schema(required = true)]
    pub last_used_at: Option<i64>,
}

fn algorithm_schema() -> utoipa::openapi::Object {
    string_enum(&["ES256", "EdDSA", "unknown"])
}

/// What a pending ceremony fixed when its options were issued (`auth_flows.data`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FlowData {
    /// `register`, `login` or `mfa`.
    purpose: String,
    /// SHA-256 hex of the base64url challenge.
    challenge: String,
    rp_id: String,
    origin: String,
    /// Whether UV is required.
    uv: bool,
    /// For `mfa`: the hash of the pending sign-in's `mfa_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mfa: Option<String>,
}

impl FlowData {
    fn expected(&self) -> Expected {
        Expected {
            rp_id: self.rp_id.clone(),
            origin: self.origin.clone(),
            challenge_hash: self.challenge.clone(),
            require_uv: self.uv,
        }
    }
}

struct Flow {
    tenant_id: Option<String>,
    user_id: Option<String>,
    data: FlowData,
}

/// Stores a pending ceremony under `key_hash`; returns the challenge (base64url).
#[allow(clippy::too_many_arguments)]
async fn open_flow<P: Platform>(
    p: &P,
    key_hash: &str,
    challenge: &str,
    purpose: &str,
    tenant_id: Option<&str>,
    user_id: Option<&str>,
    rp: &RelyingParty,
    uv: bool,
    mfa: Option<String>,
) -> Result<(), SqlError> {
    let now = p.clock().now_ms();
    let data = FlowData {
        purpose: purpose.to_owned(),
        challenge: sha256_hex(challenge.as_bytes()),
        rp_id: rp.id.clone(),
        origin: rp.origin.clone(),
        uv,
        mfa,
    };
    p.sql()
        .execute(
            Stmt::new(
                "INSERT INTO auth_flows (token_hash, kind, tenant_id, user_id, data, created_at,
                   expires_at)
                 VALUES (?1, 'webauthn', ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(key_hash)
            .bind(tenant_id)
            .bind(user_id)
            .bind(serde_json::to_string(&data).unwrap_or_else(|_| "{}".into()))
            .bind(now)
            .bind(now + FLOW_TTL_MS),
        )
        .await?;
    Ok(())
}

/// Consumes a live flow of `purpose`: whatever the answer's outcome, a challenge is used once.
async fn take_flow<P: Platform>(
    p: &P,
    key_hash: &str,
    purpose: &str,
) -> Result<Flow, WebAuthnError> {
    let now = p.clock().now_ms();
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT tenant_id, user_id, data FROM auth_flows
                 WHERE token_hash = ?1 AND kind = 'webauthn' AND consumed_at IS NULL
                   AND expires_at > ?2",
            )
            .bind(key_hash)
            .bind(now),
        )
        .await?;
    let row = rows.first().ok_or(WebAuthnError::InvalidFlow)?;
    let data: FlowData =
        serde_json::from_str(&row.text("data")?).map_err(|_| WebAuthnError::InvalidFlow)?;
    if data.purpose != purpose {
        return Err(WebAuthnError::InvalidFlow);
    }
    let consumed = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE auth_flows SET consumed_at = ?2
                 WHERE token_hash = ?1 AND kind = 'webauthn' AND consumed_at IS NULL",
            )
            .bind(key_hash)
            .bind(now),
        )
        .await?;
    if consumed != 1 {
        return Err(WebAuthnError::InvalidFlow);
    }
    Ok(Flow {
        tenant_id: row.opt_text("tenant_id")?,
        user_id: row.opt_text("user_id")?,
        data,
    })
}

fn new_challenge<R: Random + ?Sized>(random: &R) -> String {
    let mut bytes = [0u8; CHALLENGE_BYTES];
    random.fill(&mut bytes);
    b64url_encode(&bytes)
}

/// The WebAuthn user handle of a user: the bytes of its id (no PII).
fn user_handle(user_id: &str) -> String {
    b64url_encode(user_id.as_bytes())
}

fn descriptor(credential_id: &str) -> serde_json::Value {
    json!({ "type": "public-key", "id": credential_id })
}

struct Stored {
    id: String,
    credential_id: String,
    public_key: String,
    sign_count: i64,
}

async fn user_credentials<P: Platform>(p: &P, user_id: &str) -> Result<Vec<Stored>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT id, credential_id, public_key, sign_count FROM webauthn_credentials
                 WHERE user_id = ?1 ORDER BY created_at, id",
            )
            .bind(user_id),
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Stored {
                id: r.text("id")?,
                credential_id: r.text("credential_id")?,
                public_key: r.text("public_key")?,
                sign_count: r.i64("sign_count")?,
            })
        })
        .collect()
}

/// Registration options for the signed-in `user_id` of `tenant_id` (section 5.4): EdDSA then
/// ES256, resident key and UV preferred, attestation none, the user's passkeys excluded.
pub async fn registration_options<P: Platform>(
    p: &P,
    user_id: &str,
    tenant_id: &str,
    rp: &RelyingParty,
) -> Result<Options, WebAuthnError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT email, display_name FROM users
                 WHERE id = ?1 AND tenant_id = ?2 AND status = 'active'",
            )
            .bind(user_id)
            .bind(tenant_id),
        )
        .await?;
    let row = rows.first().ok_or(WebAuthnError::InvalidFlow)?;
    let email = row.opt_text("email")?.unwrap_or_default();
    let display = row
        .opt_text("display_name")?
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| email.clone());
    let exclude: Vec<_> = user_credentials(p, user_id)
        .await?
        .iter()
        .map(|c| descriptor(&c.credential_id))
        .collect();
    let flow = crypto::random_token(p.random());
    let challenge = new_challenge(p.random());
    open_flow(
        p,
        &crypto::token_hash(&flow),
        &challenge,
        "register",
        Some(tenant_id),
        Some(user_id),
        rp,
        false,
        None,
    )
    .await?;
    Ok(Options {
        flow: Some(flow),
        expires_in: FLOW_TTL_MS / 1000,
        origin: rp.origin.clone(),
        public_key: json!({
            "rp": { "id": rp.id, "name": "Edgeplane" },
            "user": { "id": user_handle(user_id), "name": email, "displayName": display },
            "challenge": challenge,
            "pubKeyCredParams": [
                { "type": "public-key", "alg": verify::ALG_EDDSA },
                { "type": "public-key", "alg": verify::ALG_ES256 },
            ],
            "timeout": FLOW_TTL_MS,
            "excludeCredentials": exclude,
            "authenticatorSelection": {
                "residentKey": "preferred",
                "requireResidentKey": false,
                "userVerification": "preferred",
            },
            "attestation": "none",
        }),
    })
}

fn algorithm_name(public_key: &str) -> &'static str {
    match b64url_decode(public_key).map(|k| CredentialKey::from_cose(&k)) {
        Some(Ok((_, verify::ALG_EDDSA))) => "EdDSA",
        Some(Ok(_)) => "ES256",
        _ => "unknown",
    }
}

fn audit_user(
    action: &'static str,
    ok: bool,
    user_id: &str,
    tenant_id: Option<&str>,
    request_id: &str,
) -> AuditRecord {
    let actor = Actor::user(user_id);
    let resource = format!("user:{user_id}");
    if ok {
        AuditRecord::success(action, &actor, tenant_id, resource, Some(request_id))
    } else {
        AuditRecord::failure(action, &actor, tenant_id, resource, Some(request_id))
    }
}

/// Completes a registration of the signed-in user (section 7.1) and stores the passkey,
/// audited `webauthn.register` in the same batch. Refusals are audited too.
pub async fn register<P: Platform>(
    p: &P,
    user_id: &str,
    tenant_id: &str,
    flow: &str,
    resp: &RegistrationResponse,
    name: Option<&str>,
    request_id: &str,
) -> Result<CredentialSummary, WebAuthnError> {
    let f = take_flow(p, &crypto::token_hash(flow), "register").await?;
    if f.user_id.as_deref() != Some(user_id) || f.tenant_id.as_deref() != Some(tenant_id) {
        return Err(WebAuthnError::InvalidFlow);
    }
    let expected = f.data.expected();
    let cred = verify_new_credential(p, resp, &expected, user_id, tenant_id, request_id).await?;
    let credential_id = b64url_encode(&cred.credential_id);
    let stored = match check_credential_can_be_added(p, user_id, &credential_id).await {
        Ok(()) => {
            store_credential(p, user_id, tenant_id, cred, credential_id, name, request_id).await
        }
        Err(e) => Err(e),
    };
    if let Err(e @ (WebAuthnError::CredentialExists | WebAuthnError::TooManyCredentials)) = &stored
    {
        let rec = audit_user(
            "webauthn.register",
            false,
            user_id,
            Some(tenant_id),
            request_id,
        )
        .with("reason", e.code());
        audit::record(p, &rec).await?;
    }
    stored
}

/// Verifies the authenticator's answer against what the flow expects; a refusal is audited
/// (`webauthn.register`, failure, with the reason).
async fn verify_new_credential<P: Platform>(
    p: &P,
    resp: &RegistrationResponse,
    expected: &Expected,
    user_id: &str,
    tenant_id: &str,
    request_id: &str,
) -> Result<verify::NewCredential, WebAuthnError> {
    match verify::verify_registration(resp, expected) {
        Ok(c) => Ok(c),
        Err(e) => {
            let rec = audit_user(
                "webauthn.register",
                false,
                user_id,
                Some(tenant_id),
                request_id,
            )
            .with("reason", e.code());
            audit::record(p, &rec).await?;
            Err(e.into())
        }
    }
}

/// Refuses a credential id that is already registered (to anyone), and a user who already has
/// [`MAX_CREDENTIALS_PER_USER`] passkeys.
async fn check_credential_can_be_added<P: Platform>(
    p: &P,
    user_id: &str,
    credential_id: &str,
) -> Result<(), WebAuthnError> {
    let taken = p
        .sql()
        .query(
            Stmt::new("SELECT 1 AS taken FROM webauthn_credentials WHERE credential_id = ?1")
                .bind(credential_id),
        )
        .await?;
    if !taken.is_empty() {
        return Err(WebAuthnError::CredentialExists);
    }
    if user_credentials(p, user_id).await?.len() >= MAX_CREDENTIALS_PER_USER {
        return Err(WebAuthnError::TooManyCredentials);
    }
    Ok(())
}

/// Stores the verified passkey `cred` of `user_id` under `name`, audited `webauthn.register`
/// in the same batch; returns its summary.
async fn store_credential<P: Platform>(
    p: &P,
    user_id: &str,
    tenant_id: &str,
    cred: verify::NewCredential,
    credential_id: String,
    name: Option<&str>,
    request_id: &str,
) -> Result<CredentialSummary, WebAuthnError> {
    let now = p.clock().now_ms();
    let id = ids::new_id(p.random());
    let public_key = b64url_encode(&cred.cose_key);
    let transports = serde_json::to_string(&cred.transports).unwrap_or_else(|_| "[]".into());
    let algorithm = if cred.alg == verify::ALG_EDDSA {
        "EdDSA"
    } else {
        "ES256"
    };
    let rec = audit_user(
        "webauthn.register",
        true,
        user_id,
        Some(tenant_id),
        request_id,
    )
    .with("credential", id.as_str())
    .with("algorithm", algorithm)
    .with("user_verified", cred.user_verified);
    // The limit and the credential's uniqueness are checked again by the insert itself: a
    // registration finished concurrently with this one may have been stored since the check.
    let applied = p
        .sql()
        .batch(vec![
            Stmt::new(
                "INSERT INTO webauthn_credentials (id, user_id, credential_id, public_key,
                   sign_count, transports, name, created_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8
                 WHERE (SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = ?2) < ?9
                   AND NOT EXISTS (SELECT 1 FROM webauthn_credentials WHERE credential_id = ?3)",
            )
            .bind(id.as_str())
            .bind(user_id)
            .bind(credential_id.as_str())
            .bind(public_key.as_str())
            .bind(i64::from(cred.sign_count))
            .bind(transports)
            .bind(name)
            .bind(now)
            .bind(MAX_CREDENTIALS_PER_USER as i64),
            audit::outbox_insert_where(
                &rec,
                &audit::new_event_id(p),
                now,
                concat!(
                    crate::audit_outbox_columns!(),
                    " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
                     WHERE EXISTS (SELECT 1 FROM webauthn_credentials WHERE id = ?11)"
                ),
            )
            .bind(id.as_str()),
        ])
        .await?;
    if applied.first().copied().unwrap_or(0) == 0 {
        // Lost to a concurrent registration: say which rule it broke.
        check_credential_can_be_added(p, user_id, &credential_id).await?;
        return Err(WebAuthnError::TooManyCredentials);
    }
    Ok(CredentialSummary {
        id,
        credential_id,
        name: name.map(str::to_owned),
        algorithm,
        transports: cred.transports,
        created_at: now,
        last_used_at: None,
    })
}

/// The passkeys of `user_id`, oldest first.
pub async fn list_credentials<P: Platform>(
    p: &P,
    user_id: &str,
) -> Result<Vec<CredentialSummary>, WebAuthnError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT id, credential_id, public_key, transports, name, created_at, last_used_at
                 FROM webauthn_credentials WHERE user_id = ?1 ORDER BY created_at, id",
            )
            .bind(user_id),
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(CredentialSummary {
                id: r.text("id")?,
                credential_id: r.text("credential_id")?,
                name: r.opt_text("name")?,
                algorithm: algorithm_name(&r.text("public_key")?),
                transports: serde_json::from_str(&r.text("transports")?).unwrap_or_default(),
                created_at: r.i64("created_at")?,
                last_used_at: r.opt_i64("last_used_at")?,
            })
        })
        .collect()
}

/// Removes a passkey of the signed-in user, audited `webauthn.delete`. Another user's id is
/// [`WebAuthnError::NotFound`].
pub async fn delete_credential<P: Platform>(
    p: &P,
    user_id: &str,
    tenant_id: &str,
    id: &str,
    request_id: &str,
) -> Result<(), WebAuthnError> {
    let found = p
        .sql()
        .query(
            Stmt::new(
                "SELECT c.id FROM webauthn_credentials c JOIN users u ON u.id = c.user_id
                 WHERE c.id = ?1 AND c.user_id = ?2 AND u.tenant_id = ?3",
            )
            .bind(id)
            .bind(user_id)
            .bind(tenant_id),
        )
        .await?;
    if found.is_empty() {
        return Err(WebAuthnError::NotFound);
    }
    let now = p.clock().now_ms();
    let rec = audit_user(
        "webauthn.delete",
        true,
        user_id,
        Some(tenant_id),
        request_id,
    )
    .with("credential", id);
    p.sql()
        .batch(vec![
            Stmt::new("DELETE FROM webauthn_credentials WHERE id = ?1 AND user_id = ?2")
                .bind(id)
                .bind(user_id),
            audit::outbox_insert(&rec, &audit::new_event_id(p), now),
        ])
        .await?;
    Ok(())
}

/// Lengths in bytes of the credential ids common authenticators make, with their weight out of
/// 256: 16 (Google Password Manager and other password managers), 20 (iCloud Keychain), 32
/// (Windows Hello), 48 and 64 (security keys). Stand-ins draw from this mix, so no id length
/// marks an account as made up.
const STAND_IN_ID_LENGTHS: [(usize, u16); 5] = [(16, 64), (20, 64), (32, 64), (48, 16), (64, 48)];

/// How many passkeys a stand-in account has, with their weight out of 256: mostly one, some two
/// or three, as real accounts (at most [`MAX_CREDENTIALS_PER_USER`]) mostly have.
const STAND_IN_COUNTS: [(usize, u16); 3] = [(1, 160), (2, 64), (3, 32)];

/// Domain separation of the stand-ins' MACs from any other use of the key.
const STAND_IN_LABEL: &str = "edgeplane/webauthn/stand-in/v2";

/// The entry of a weighted table that `pick` (0 to 255) falls on.
fn weighted(table: &[(usize, u16)], pick: u8) -> usize {
    let mut upto = 0;
    for &(value, weight) in table {
        upto += weight;
        if u16::from(pick) < upto {
            return value;
        }
    }
    table.last().map_or(1, |&(value, _)| value)
}

/// Stand-in credential ids for an email that names no user with passkeys: how many there are
/// and how long each is follow [`STAND_IN_COUNTS`] and [`STAND_IN_ID_LENGTHS`], and all of it
/// is an HMAC-SHA256 of the tenant and the email under the server's `MASTER_KEY`. So the same
/// email gets the same answer on every request, emails differ as real accounts do, and without
/// the key nobody can compute them to tell them apart from real ones. (Without `MASTER_KEY`
/// they are still stable, but no token can be signed then, so no sign-in succeeds anyway.)
fn stand_in_credential_ids<S: Secrets + ?Sized>(
    secrets: &S,
    tenant: &str,
    email: &str,
) -> Vec<String> {
    let key = secrets.get(MASTER_KEY_SECRET).unwrap_or_default();
    let (tenant, email) = (tenant.to_lowercase(), email.to_lowercase());
    // HMAC takes keys of any length: this cannot fail.
    let Ok(keyed) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return Vec::new();
    };
    let mac = |parts: &[&[u8]]| {
        let mut m = keyed.clone();
        for part in parts {
            // Length-prefixed, so no two different inputs run together the same way.
            m.update(&(part.len() as u64).to_be_bytes());
            m.update(part);
        }
        m.finalize().into_bytes()
    };
    let account = [
        STAND_IN_LABEL.as_bytes(),
        tenant.as_bytes(),
        email.as_bytes(),
    ];
    let seed = mac(&account);
    let count = weighted(&STAND_IN_COUNTS, seed[0]);
    (0..count)
        .map(|i| {
            let len = weighted(&STAND_IN_ID_LENGTHS, seed[1 + i]);
            let index = [i as u8];
            let mut id = Vec::with_capacity(64);
            for block in [b"a", b"b"] {
                id.extend_from_slice(&mac(&[&seed, &index, block]));
            }
            id.truncate(len);
            b64url_encode(&id)
        })
        .collect()
}

/// Options for a passwordless sign-in to the tenant of `domain` (UV required). With an email
/// that names an active user with passkeys, `allowCredentials` lists them; with any other email
/// stable stand-ins shaped like them (`stand_in_credential_ids`), after the same queries;
/// without an email none (discoverable credentials).
pub async fn login_options<P: Platform>(
    p: &P,
    domain: &str,
    email: Option<&str>,
    rp: &RelyingParty,
) -> Result<Options, WebAuthnError> {
    let tenants = p
        .sql()
        .query(Stmt::new("SELECT id FROM tenants WHERE domain = ?1").bind(domain))
        .await?;
    let tenant_id = tenants.first().map(|r| r.text("id")).transpose()?;
    let mut allow = Vec::new();
    let mut user_id = None;
    if let Some(email) = email {
        // The same three queries whether or not the tenant and the user exist (no row has the
        // empty id), so an unknown email does not answer sooner.
        let users = p
            .sql()
            .query(
                Stmt::new(
                    "SELECT id FROM users WHERE tenant_id = ?1 AND email = ?2
                       AND status = 'active'",
                )
                .bind(tenant_id.as_deref().unwrap_or(""))
                .bind(email),
            )
            .await?;
        let uid = users.first().map(|u| u.text("id")).transpose()?;
        allow = user_credentials(p, uid.as_deref().unwrap_or(""))
            .await?
            .iter()
            .map(|c| descriptor(&c.credential_id))
            .collect();
        if allow.is_empty() {
            allow = stand_in_credential_ids(p.secrets(), domain, email)
                .iter()
                .map(|id| descriptor(id))
                .collect();
        } else {
            user_id = uid;
        }
    }
    let flow = crypto::random_token(p.random());
    let challenge = new_challenge(p.random());
    open_flow(
        p,
        &crypto::token_hash(&flow),
        &challenge,
        "login",
        tenant_id.as_deref(),
        user_id.as_deref(),
        rp,
        true,
        None,
    )
    .await?;
    Ok(Options {
        flow: Some(flow),
        expires_in: FLOW_TTL_MS / 1000,
        origin: rp.origin.clone(),
        public_key: json!({
            "challenge": challenge,
            "timeout": FLOW_TTL_MS,
            "rpId": rp.id,
            "allowCredentials": allow,
            "userVerification": "required",
        }),
    })
}

/// A passkey row with its owner, as an assertion needs it.
struct Owned {
    stored: Stored,
    user: SessionUser,
    user_active: bool,
    tenant_active: bool,
}

async fn find_credential<P: Platform>(
    p: &P,
    credential_id: &str,
    tenant_id: &str,
) -> Result<Option<Owned>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT c.id, c.credential_id, c.public_key, c.sign_count, u.id AS user_id,
                        u.tenant_id, u.role, u.status, t.status AS tenant_status
                 FROM webauthn_credentials c JOIN users u ON u.id = c.user_id
                   JOIN tenants t ON t.id = u.tenant_id
                 WHERE c.credential_id = ?1 AND u.tenant_id = ?2",
            )
            .bind(credential_id)
            .bind(tenant_id),
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(Owned {
        stored: Stored {
            id: r.text("id")?,
            credential_id: r.text("credential_id")?,
            public_key: r.text("public_key")?,
            sign_count: r.i64("sign_count")?,
        },
        user: SessionUser {
            user_id: r.text("user_id")?,
            tenant_id: r.text("tenant_id")?,
            role: r.text("role")?,
        },
        user_active: r.text("status")? == "active",
        tenant_active: r.text("tenant_status")? == "active",
    }))
}

/// Verifies an assertion by a stored passkey and applies the sign count rule (section 7.2
/// step 22): when either count is non-zero the new one must be greater, or the authenticator
/// may be cloned (refused and audited `webauthn.clone_suspected`). On success the count and
/// `last_used_at` are updated.
async fn assert_with<P: Platform>(
    p: &P,
    owned: &Owned,
    resp: &AuthenticationResponse,
    exp: &Expected,
    request_id: &str,
) -> Result<verify::VerifiedAssertion, WebAuthnError> {
    let key = b64url_decode(&owned.stored.public_key).ok_or(WebAuthnError::UnknownCredential)?;
    let v = verify::verify_assertion(resp, exp, &key)?;
    let new = i64::from(v.sign_count);
    let old = owned.stored.sign_count;
    let now = p.clock().now_ms();
    if (new != 0 || old != 0) && new <= old {
        let u = &owned.user;
        let rec = AuditRecord::failure(
            "webauthn.clone_suspected",
            &Actor::user(&u.user_id),
            Some(&u.tenant_id),
            format!("user:{}", u.user_id),
            Some(request_id),
        )
        .with("credential", owned.stored.id.as_str())
        .with("stored_sign_count", old)
        .with("presented_sign_count", new);
        audit::record(p, &rec).await?;
        return Err(WebAuthnError::PossibleClone);
    }
    let updated = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE webauthn_credentials SET sign_count = ?2, last_used_at = ?3
                 WHERE id = ?1 AND sign_count = ?4",
            )
            .bind(owned.stored.id.as_str())
            .bind(new)
            .bind(now)
            .bind(old),
        )
        .await?;
    // Another assertion moved the count meanwhile: the same signal as a count going back.
    if updated != 1 {
        return Err(WebAuthnError::PossibleClone);
    }
    Ok(v)
}

/// Audits a refused passwordless sign-in (the rate limits counted the attempt before it was
/// checked).
async fn refuse_login<P: Platform>(
    p: &P,
    user: Option<&SessionUser>,
    reason: &str,
    request_id: &str,
) -> Result<(), SqlError> {
    let now = p.clock().now_ms();
    let rec = match user {
        Some(u) => AuditRecord::failure(
            "session.create",
            &Actor::user(&u.user_id),
            Some(&u.tenant_id),
            format!("user:{}", u.user_id),
            Some(request_id),
        ),
        None => AuditRecord::failure(
            "session.create",
            &Actor::user("anonymous"),
            None,
            "session",
            Some(request_id),
        ),
    }
    .with("method", "webauthn")
    .with("reason", reason);
    p.sql()
        .execute(audit::outbox_insert(&rec, &audit::new_event_id(p), now))
        .await?;
    Ok(())
}

/// Passwordless sign-in (NFR-SEC-003): the flow of [`login_options`], a passkey of an active
/// user of that tenant (found by credential id, and by user handle when the authenticator gives
/// one), user verification, a rising sign count. Starts a session with `amr` `hwk`, `mfa`
/// (possession of the key plus the verified PIN or biometric). Failures are throttled like
/// password sign-ins and audited.
pub async fn login<P: Platform>(
    p: &P,
    flow: &str,
    resp: &AuthenticationResponse,
    client: Option<&str>,
    request_id: &str,
) -> Result<TokenPair, WebAuthnError> {
    let origin = SignInContext {
        client: client.map(str::to_owned),
        ..SignInContext::default()
    };
    login_from(p, flow, resp, &origin, request_id).await
}

/// [`login`] from the device and location of `origin` (NFR-SEC-006): the passkey is a strong
/// factor, so the risk check steps nothing up, but it records the sign-in and a policy that
/// blocks the level refuses it like an unknown passkey.
pub async fn login_from<P: Platform>(
    p: &P,
    flow: &str,
    resp: &AuthenticationResponse,
    origin: &SignInContext,
    request_id: &str,
) -> Result<TokenPair, WebAuthnError> {
    let client = origin.client.as_deref();
    if flow.is_empty() || flow.len() > 128 {
        return Err(WebAuthnError::InvalidFlow);
    }
    let now = p.clock().now_ms();
    let raw_id = assertion_credential_id(resp)?;
    let credential_id = b64url_encode(&raw_id);
    let f = take_flow(p, &crypto::token_hash(flow), "login").await?;
    let tenant = f.tenant_id.clone().unwrap_or_default();
    let counters = throttle::counters(
        (
            throttle::LOGIN_PER_ACCOUNT,
            &format!("webauthn|{tenant}|{credential_id}"),
        ),
        (throttle::LOGIN_PER_CLIENT, client),
        now,
    );
    let held = match throttle::admit(p, counters).await? {
        throttle::Admission::Admitted(held) => held,
        throttle::Admission::Refused { retry_after_secs } => {
            refuse_login(p, None, "rate_limited", request_id).await?;
            return Err(WebAuthnError::RateLimited { retry_after_secs });
        }
    };
    let owned = match find_credential(p, &credential_id, &tenant).await? {
        Some(o) if f.user_id.as_ref().is_none_or(|u| *u == o.user.user_id) => o,
        _ => {
            refuse_login(p, None, "unknown_credential", request_id).await?;
            held.keep();
            return Err(WebAuthnError::UnknownCredential);
        }
    };
    let handle = assertion_user_handle(resp)?;
    // Without allowCredentials the authenticator chose a discoverable credential: it must say
    // whose, and that must be the credential's owner.
    let handle_ok = match &handle {
        Some(h) => h.as_slice() == owned.user.user_id.as_bytes(),
        None => f.user_id.is_some(),
    };
    if !handle_ok {
        refuse_login(p, Some(&owned.user), "user_handle", request_id).await?;
        held.keep();
        return Err(WebAuthnError::UnknownCredential);
    }
    if let Err(e) = assert_with(p, &owned, resp, &f.data.expected(), request_id).await {
        refuse_login(p, Some(&owned.user), e.code(), request_id).await?;
        held.keep();
        return Err(e);
    }
    if !owned.user_active {
        refuse_login(p, Some(&owned.user), "inactive", request_id).await?;
        held.keep();
        return Err(WebAuthnError::UnknownCredential);
    }
    held.release(p).await?;
    if !owned.tenant_active {
        refuse_login(p, Some(&owned.user), "tenant_not_active", request_id).await?;
        return Err(WebAuthnError::TenantNotActive);
    }
    let strong = risk::Factors {
        has_second_factor: true,
        asked_anyway: false,
        satisfied: true,
    };
    let decision = risk::decide(
        p,
        &owned.user,
        origin,
        risk::SignInMethod::Passkey,
        None,
        strong,
        request_id,
    )
    .await?;
    if decision.requirement == risk::Requirement::Block {
        return Err(WebAuthnError::UnknownCredential);
    }
    let attempt = Some(decision.attempt_id.as_str());
    let decided = decision.writes;
    Ok(sessions::start(
        p,
        &owned.user,
        &["hwk", "mfa"],
        attempt,
        decided,
        request_id,
    )
    .await?)
}

/// Options for a passkey as the second factor of the pending sign-in of `user` (whose
/// `mfa_token` hashes to `mfa_hash`); the challenge itself keys the flow.
pub async fn mfa_options<P: Platform>(
    p: &P,
    user: &SessionUser,
    mfa_hash: &str,
    rp: &RelyingParty,
) -> Result<Options, WebAuthnError> {
    let allow: Vec<_> = user_credentials(p, &user.user_id)
        .await?
        .iter()
        .map(|c| descriptor(&c.credential_id))
        .collect();
    if allow.is_empty() {
        return Err(WebAuthnError::NoPasskey);
    }
    let challenge = new_challenge(p.random());
    open_flow(
        p,
        &crypto::token_hash(&challenge),
        &challenge,
        "mfa",
        Some(&user.tenant_id),
        Some(&user.user_id),
        rp,
        false,
        Some(mfa_hash.to_owned()),
    )
    .await?;
    Ok(Options {
        flow: None,
        expires_in: FLOW_TTL_MS / 1000,
        origin: rp.origin.clone(),
        public_key: json!({
            "challenge": challenge,
            "timeout": FLOW_TTL_MS,
            "rpId": rp.id,
            "allowCredentials": allow,
            "userVerification": "preferred",
        }),
    })
}

/// The challenge a response's client data names (unverified: it only finds the flow, whose
/// own checks follow).
fn claimed_challenge(resp: &AuthenticationResponse) -> Result<String, WebAuthnError> {
    #[derive(Deserialize)]
    struct Claimed {
        challenge: String,
    }
    let raw = b64url_decode(resp.response.client_data_json.trim_end_matches('='))
        .ok_or(CeremonyError::Malformed("clientDataJSON"))?;
    let c: Claimed =
        serde_json::from_slice(&raw).map_err(|_| CeremonyError::Malformed("clientDataJSON"))?;
    Ok(c.challenge)
}

/// Checks a passkey assertion as the second factor of the pending sign-in of `user`
/// (`mfa_hash`: its token's hash): a challenge from [`mfa_options`] for this very sign-in, one
/// of the user's passkeys, a rising sign count. Returns the `amr` method, `hwk`.
pub async fn check_second_factor<P: Platform>(
    p: &P,
    user: &SessionUser,
    mfa_hash: &str,
    resp: &AuthenticationResponse,
    request_id: &str,
) -> Result<&'static str, WebAuthnError> {
    let challenge = claimed_challenge(resp)?;
    if challenge.len() > 128 {
        return Err(WebAuthnError::InvalidFlow);
    }
    let f = take_flow(p, &crypto::token_hash(&challenge), "mfa").await?;
    if f.user_id.as_deref() != Some(user.user_id.as_str())
        || f.data.mfa.as_deref() != Some(mfa_hash)
    {
        return Err(WebAuthnError::InvalidFlow);
    }
    let credential_id = b64url_encode(&assertion_credential_id(resp)?);
    let owned = find_credential(p, &credential_id, &user.tenant_id)
        .await?
        .filter(|o| o.user.user_id == user.user_id)
        .ok_or(WebAuthnError::UnknownCredential)?;
    if let Some(h) = assertion_user_handle(resp)? {
        if h.as_slice() != user.user_id.as_bytes() {
            return Err(WebAuthnError::UnknownCredential);
        }
    }
    assert_with(p, &owned, resp, &f.data.expected(), request_id).await?;
    Ok("hwk")
}
