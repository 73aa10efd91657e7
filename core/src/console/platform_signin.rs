//! Operators and auditors sign in to the console through their external identity provider
//! (FR-SYS-004): the OpenID Connect authorization code flow with PKCE (S256), a `state` and a
//! `nonce`, as a confidential client of the same issuer whose bearer tokens the API accepts
//! (`OPERATOR_ISSUER`). The client is `OPERATOR_CONSOLE_CLIENT_ID` with the secret
//! `OPERATOR_CONSOLE_CLIENT_SECRET`; it asks for the scopes `OPERATOR_CONSOLE_SCOPES` (default
//! `openid email profile`).
//!
//! [`start`] fetches the issuer's discovery document, stores the single-use sign-in
//! (`console_signins`, ten minutes: the nonce's hash and the sealed PKCE verifier) under the
//! state's hash, and returns the authorization URL and the state (which the browser also keeps
//! in a cookie). [`callback`] consumes that row once, exchanges the code at the token endpoint,
//! verifies the ID token with the issuer's keys (the same key handling as bearer tokens:
//! RS256, ES256 or EdDSA), checks issuer, audience (the client), validity, nonce and the role
//! claim, and provisions the platform user as a bearer token would.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::auth::config::{self, ConfigProblem};
use crate::auth::{jwt, keys, provision, OperatorAuthError, OperatorPrincipal};
use crate::crypto::{b64url_encode, random_token, token_hash};
use crate::kernel::ErrorKind;
use crate::ports::{Clock, HttpClient, Logger, Platform, Secrets, Sql, SqlError, Stmt};
use crate::sso::discovery::{self, TokenAuth};
use crate::tokens::master_key::MasterKey;

/// The console's client id at the operator identity provider.
pub const CLIENT_ID_VAR: &str = "OPERATOR_CONSOLE_CLIENT_ID";
/// Its client secret.
pub const CLIENT_SECRET_VAR: &str = "OPERATOR_CONSOLE_CLIENT_SECRET";
/// The scopes it asks for, space separated, when the provider releases the role claim only for
/// a scope of its own (Keycloak's `roles`, Okta's `groups`).
pub const SCOPES_VAR: &str = "OPERATOR_CONSOLE_SCOPES";
/// The scopes asked for when [`SCOPES_VAR`] is unset.
pub const DEFAULT_SCOPES: &str = "openid email profile";
/// How long a started sign-in may be completed.
pub const SIGNIN_TTL_MS: i64 = 10 * 60 * 1000;
/// The ID token algorithms accepted from the operator identity provider (those of bearer tokens).
const ID_TOKEN_ALGS: &[&str] = &["RS256", "ES256", "EdDSA"];
/// Largest token endpoint answer read.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// Where to send the browser, and the state it must bring back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The identity provider's authorization URL with every parameter.
    pub authorization_url: String,
    /// The OAuth `state`, also kept by the browser in a cookie.
    pub state: String,
}

/// Why a console sign-in failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformSignInError {
    /// The issuer, audience or the console client is not configured.
    #[error("console sign-in for operators is not configured (OPERATOR_ISSUER, OPERATOR_CONSOLE_CLIENT_ID, OPERATOR_CONSOLE_CLIENT_SECRET)")]
    NotConfigured,
    /// The state is unknown, used, expired, or not this browser's.
    #[error("this sign-in is unknown, expired or already used")]
    UnknownSignIn,
    /// The identity provider answered with an error (its code, sanitised), or the code was
    /// refused at the token endpoint.
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    /// The ID token did not verify or its claims are wrong.
    #[error("the identity provider's ID token was refused: {0}")]
    IdToken(&'static str),
    /// The ID token grants neither `operator` nor `auditor`, or the platform user is disabled.
    #[error("the account has no operator or auditor role")]
    NoRole,
    /// The identity provider could not be reached or its documents are unusable.
    #[error("the operator identity provider is unavailable: {0}")]
    IdpUnavailable(String),
    /// `MASTER_KEY` is missing or invalid.
    #[error("the master key is unusable: {0}")]
    MasterKey(String),
    /// The database failed.
    #[error("console sign-in storage failed: {0}")]
    Storage(String),
}

impl PlatformSignInError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            PlatformSignInError::NotConfigured => "console_signin_not_configured",
            PlatformSignInError::UnknownSignIn => "console_signin_unknown",
            PlatformSignInError::Refused(_) => "console_signin_refused",
            PlatformSignInError::IdToken(_) => "console_signin_id_token",
            PlatformSignInError::NoRole => "console_signin_no_role",
            PlatformSignInError::IdpUnavailable(_) => "console_signin_idp_unavailable",
            PlatformSignInError::MasterKey(_) => "master_key",
            PlatformSignInError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PlatformSignInError::NotConfigured => ErrorKind::Unavailable,
            PlatformSignInError::UnknownSignIn => ErrorKind::Unauthenticated,
            PlatformSignInError::Refused(_) => ErrorKind::Unauthenticated,
            PlatformSignInError::IdToken(_) => ErrorKind::InvalidToken,
            PlatformSignInError::NoRole => ErrorKind::Forbidden,
            PlatformSignInError::IdpUnavailable(_) => ErrorKind::Unavailable,
            PlatformSignInError::MasterKey(_) => ErrorKind::Internal,
            PlatformSignInError::Storage(_) => ErrorKind::Internal,
        }
    }
}

impl From<SqlError> for PlatformSignInError {
    fn from(e: SqlError) -> Self {
        PlatformSignInError::Storage(e.to_string())
    }
}

/// What the single-use row keeps between the redirect and the callback.
#[derive(Debug, Serialize, Deserialize)]
struct SignInData {
    nonce_hash: String,
    verifier_enc: String,
    redirect_uri: String,
    token_endpoint: String,
    token_auth: TokenAuth,
    return_to: Option<String>,
}

/// The client's settings, with the issuer's.
struct Client {
    auth: config::OperatorAuthConfig,
    id: String,
    secret: String,
    scopes: String,
}

fn client<P: Platform>(p: &P) -> Result<Client, PlatformSignInError> {
    let auth = match config::load(p.secrets()) {
        Ok(loaded) => loaded.config,
        Err(ConfigProblem::Missing(_) | ConfigProblem::Invalid(..)) => {
            return Err(PlatformSignInError::NotConfigured)
        }
    };
    let id = p.secrets().get(CLIENT_ID_VAR).filter(|v| !v.is_empty());
    let secret = p.secrets().get(CLIENT_SECRET_VAR).filter(|v| !v.is_empty());
    // `openid` always: without it there is no ID token.
    let mut scopes = p
        .secrets()
        .get(SCOPES_VAR)
        .filter(|v| {
            !v.trim().is_empty()
                && v.len() <= 512
                && v.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        })
        .unwrap_or_else(|| DEFAULT_SCOPES.to_owned());
    if !scopes.split(' ').any(|s| s == "openid") {
        scopes = format!("openid {scopes}");
    }
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Client {
            auth,
            id,
            secret,
            scopes,
        }),
        _ => Err(PlatformSignInError::NotConfigured),
    }
}

/// Whether the console can sign operators in here.
pub fn configured<P: Platform>(p: &P) -> bool {
    client(p).is_ok()
}

fn verifier_context(state_hash: &str) -> String {
    format!("console-signin:{state_hash}")
}

/// Starts a sign-in: `redirect_uri` is the console's callback URL on this origin; `return_to`
/// a console path to land on afterwards.
pub async fn start<P: Platform>(
    p: &P,
    redirect_uri: &str,
    return_to: Option<String>,
) -> Result<Started, PlatformSignInError> {
    let client = client(p)?;
    let meta = discovery::discover_accepting(
        p,
        &client.auth.issuer,
        client.auth.development_issuer,
        ID_TOKEN_ALGS,
    )
    .await
    .map_err(|e| PlatformSignInError::IdpUnavailable(e.log_detail()))?;
    let master =
        MasterKey::load(p.secrets()).map_err(|e| PlatformSignInError::MasterKey(e.to_string()))?;
    let state = random_token(p.random());
    let nonce = random_token(p.random());
    let verifier = random_token(p.random());
    let state_hash = token_hash(&state);
    let data = SignInData {
        nonce_hash: token_hash(&nonce),
        verifier_enc: master.seal(
            p.random(),
            &verifier_context(&state_hash),
            verifier.as_bytes(),
        ),
        redirect_uri: redirect_uri.to_owned(),
        token_endpoint: meta.token_endpoint.clone(),
        token_auth: meta.token_auth,
        return_to,
    };
    let now = p.clock().now_ms();
    let json =
        serde_json::to_string(&data).map_err(|e| PlatformSignInError::Storage(e.to_string()))?;
    p.sql()
        .execute(
            Stmt::new(
                "INSERT INTO console_signins (state_hash, kind, data, created_at, expires_at)
                 VALUES (?1, 'platform', ?2, ?3, ?4)",
            )
            .bind(state_hash)
            .bind(json)
            .bind(now)
            .bind(now + SIGNIN_TTL_MS),
        )
        .await?;
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &client.scopes)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair(
            "code_challenge",
            &b64url_encode(&Sha256::digest(verifier.as_bytes())),
        )
        .append_pair("code_challenge_method", "S256")
        .finish();
    let endpoint = &meta.authorization_endpoint;
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    Ok(Started {
        authorization_url: format!("{endpoint}{sep}{query}"),
        state,
    })
}

/// The identity provider's answer at the callback.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// `state`.
    pub state: Option<String>,
    /// `code`.
    pub code: Option<String>,
    /// `error`, when the provider refused.
    pub error: Option<String>,
}

/// A completed sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Who signed in.
    pub principal: OperatorPrincipal,
    /// Their email as the identity provider gave it, for display.
    pub email: Option<String>,
    /// The console path to land on.
    pub return_to: Option<String>,
}

/// Completes a sign-in: `browser_state` is the state of the browser's cookie, which must be the
/// one the provider sent back.
pub async fn callback<P: Platform>(
    p: &P,
    answer: &Answer,
    browser_state: Option<&str>,
) -> Result<SignedIn, PlatformSignInError> {
    let client = client(p)?;
    let state = answer
        .state
        .as_deref()
        .filter(|s| s.len() <= 256)
        .ok_or(PlatformSignInError::UnknownSignIn)?;
    if browser_state != Some(state) {
        return Err(PlatformSignInError::UnknownSignIn);
    }
    let state_hash = token_hash(state);
    let data = consume(p, &state_hash).await?;
    if let Some(error) = &answer.error {
        return Err(PlatformSignInError::Refused(sanitise(error)));
    }
    let code = answer
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or(PlatformSignInError::UnknownSignIn)?;
    let master =
        MasterKey::load(p.secrets()).map_err(|e| PlatformSignInError::MasterKey(e.to_string()))?;
    let verifier = master
        .open(&verifier_context(&state_hash), &data.verifier_enc)
        .ok()
        .and_then(|v| String::from_utf8(v).ok())
        .ok_or(PlatformSignInError::UnknownSignIn)?;
    let id_token = exchange(p, &client, &data, code, &verifier).await?;
    let (principal, email) = verify(p, &client, &id_token, &data.nonce_hash).await?;
    Ok(SignedIn {
        principal,
        email,
        return_to: data.return_to,
    })
}

/// Marks the sign-in of `state_hash` used and returns it; `UnknownSignIn` if it is unknown,
/// expired or was used (by a concurrent callback too: the update decides).
async fn consume<P: Platform>(p: &P, state_hash: &str) -> Result<SignInData, PlatformSignInError> {
    let now = p.clock().now_ms();
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT data FROM console_signins WHERE state_hash = ?1 AND kind = 'platform'
                   AND consumed_at IS NULL AND expires_at > ?2",
            )
            .bind(state_hash)
            .bind(now),
        )
        .await?;
    let Some(row) = rows.first() else {
        return Err(PlatformSignInError::UnknownSignIn);
    };
    let data: SignInData = serde_json::from_str(&row.text("data")?)
        .map_err(|e| PlatformSignInError::Storage(e.to_string()))?;
    let claimed = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE console_signins SET consumed_at = ?2
                 WHERE state_hash = ?1 AND consumed_at IS NULL",
            )
            .bind(state_hash)
            .bind(now),
        )
        .await?;
    if claimed != 1 {
        return Err(PlatformSignInError::UnknownSignIn);
    }
    Ok(data)
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// Exchanges the code for the ID token.
async fn exchange<P: Platform>(
    p: &P,
    client: &Client,
    data: &SignInData,
    code: &str,
    verifier: &str,
) -> Result<String, PlatformSignInError> {
    if discovery::origin_of(&data.token_endpoint) != discovery::origin_of(&client.auth.issuer) {
        return Err(PlatformSignInError::IdpUnavailable(
            "the token endpoint is not on the issuer's origin".to_owned(),
        ));
    }
    let token_client = discovery::TokenClient {
        endpoint: &data.token_endpoint,
        auth: data.token_auth,
        id: &client.id,
        secret: &client.secret,
    };
    let req = discovery::code_exchange(
        token_client,
        code,
        &data.redirect_uri,
        verifier,
        MAX_TOKEN_RESPONSE_BYTES,
    );
    let resp = p
        .http()
        .fetch(req)
        .await
        .map_err(|e| PlatformSignInError::IdpUnavailable(format!("token endpoint: {e}")))?;
    if resp.status >= 500 {
        return Err(PlatformSignInError::IdpUnavailable(format!(
            "token endpoint: status {}",
            resp.status
        )));
    }
    if resp.status != 200 {
        let error = serde_json::from_slice::<Json>(&resp.body)
            .ok()
            .and_then(|j| j.get("error").and_then(Json::as_str).map(sanitise))
            .unwrap_or_else(|| format!("status {}", resp.status));
        let line = serde_json::json!({
            "ts": p.clock().now_ms(), "level": "warn",
            "msg": "operator IdP token endpoint refused the console's code", "error": error,
        });
        p.logger().line(&line.to_string());
        return Err(PlatformSignInError::Refused(error));
    }
    serde_json::from_slice::<TokenResponse>(&resp.body)
        .ok()
        .and_then(|t| t.id_token)
        .ok_or(PlatformSignInError::IdToken(
            "the token endpoint sent no ID token",
        ))
}

/// Verifies the ID token and provisions its platform user.
async fn verify<P: Platform>(
    p: &P,
    client: &Client,
    id_token: &str,
    nonce_hash: &str,
) -> Result<(OperatorPrincipal, Option<String>), PlatformSignInError> {
    let refused = |e: OperatorAuthError| match e {
        OperatorAuthError::NoRole => PlatformSignInError::NoRole,
        OperatorAuthError::IssuerUnavailable(cause) => PlatformSignInError::IdpUnavailable(cause),
        OperatorAuthError::Storage(cause) => PlatformSignInError::Storage(cause),
        OperatorAuthError::NotConfigured => PlatformSignInError::NotConfigured,
        other => PlatformSignInError::IdToken(other.code()),
    };
    let untrusted = jwt::parse(id_token).map_err(refused)?;
    let keys = keys::candidates(p, &client.auth, untrusted.alg, untrusted.kid.as_deref())
        .await
        .map_err(refused)?;
    let claims = untrusted.verify(&keys).map_err(refused)?;
    let nonce = claims.custom.get("nonce").and_then(Json::as_str);
    if nonce.map(token_hash).as_deref() != Some(nonce_hash) {
        return Err(PlatformSignInError::IdToken("nonce"));
    }
    let checked = jwt::check_claims(
        &claims,
        &jwt::Expected {
            issuer: &client.auth.issuer,
            audience: &client.id,
            role_claim: &client.auth.role_claim,
            now_ms: p.clock().now_ms(),
        },
    )
    .map_err(refused)?;
    let user_id = provision::provision(
        p,
        &client.auth.issuer,
        &checked.subject,
        checked.role,
        checked.email.as_deref(),
    )
    .await
    .map_err(refused)?;
    Ok((
        OperatorPrincipal {
            user_id,
            issuer: client.auth.issuer.clone(),
            subject: checked.subject,
            role: checked.role,
        },
        checked.email,
    ))
}

/// An identity provider's error code, kept to what OAuth allows in one (RFC 6749, 4.1.2.1:
/// printable ASCII without quote or backslash), at most 64 characters.
fn sanitise(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .take(64)
        .collect()
}
