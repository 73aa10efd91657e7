//! Signing keys (NFR-SEC-004): Ed25519 seeds from the Random port (a CSPRNG), sealed under the
//! master key in `signing_keys.private_key_enc`. One key is `active` and signs; rotation demotes
//! it to `previous`, published until every token it signed has expired (`not_after`), then a
//! later rotation or cron run retires it and destroys its private key (NULL).
//!
//! Verifiers read the published public keys from a KV copy of the JWKS (`signing:jwks`),
//! rewritten on every rotation; an unknown `kid` falls back to D1 once.

use std::rc::Rc;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::master_key::{MasterKey, MasterKeyError};
use super::ACCESS_TOKEN_TTL_SECS;
use crate::audit::{self, Actor, AuditRecord};
use crate::crypto::b64url_encode;
use crate::edge;
use crate::ids;
use crate::kernel::schema::string_enum;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Random, Sql, SqlError, Stmt};

/// KV key of the cached published key set.
pub const JWKS_KV_KEY: &str = "signing:jwks";

/// How long the edge may serve a cached copy of [`JWKS_KV_KEY`] (Workers KV `cacheTtl`).
pub const JWKS_KV_CACHE_TTL_SECS: u32 = 60;
/// How long the KV copy of the key set is trusted (seconds).
const JWKS_KV_TTL_SECS: u32 = 300;
/// Age after which the cron rotates the active key: one year (NFR-SEC-004 "at least annually").
pub const ROTATE_AFTER_MS: i64 = 365 * 24 * 3600 * 1000;
/// How long a demoted key stays published: the longest access token it signed, plus a margin
/// for clock skew and for the KV copy of the key set to refresh.
pub const PREVIOUS_KEY_GRACE_MS: i64 = (ACCESS_TOKEN_TTL_SECS + 600) * 1000;

/// Why a signing key could not be used or created.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SigningKeyError {
    /// The master key is missing or invalid: nothing can be signed.
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    /// The active key's private key does not open under the master key (wrong `MASTER_KEY`,
    /// or the row was tampered with).
    #[error("the active signing key does not open under MASTER_KEY")]
    Undecryptable,
    /// The database failed.
    #[error("signing key storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl SigningKeyError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            SigningKeyError::MasterKey(MasterKeyError::Missing) => "master_key_missing",
            SigningKeyError::MasterKey(MasterKeyError::Invalid) => "master_key_invalid",
            SigningKeyError::Undecryptable => "signing_key_undecryptable",
            SigningKeyError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            SigningKeyError::MasterKey(MasterKeyError::Missing) => ErrorKind::Internal,
            SigningKeyError::MasterKey(MasterKeyError::Invalid) => ErrorKind::Internal,
            SigningKeyError::Undecryptable => ErrorKind::Internal,
            SigningKeyError::Storage(_) => ErrorKind::Unavailable,
        }
    }
}

crate::kernel::domain_errors!(SigningKeyError);

/// The key that signs now.
pub struct ActiveKey {
    /// Its key id, the `kid` header of every token it signs.
    pub kid: String,
    /// The private key.
    pub key: SigningKey,
}

/// A published public key, as in the JWKS (RFC 8037 OKP key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublicJwk {
    /// `OKP`.
    #[schema(schema_with = kty_schema)]
    pub kty: String,
    /// `Ed25519`.
    #[schema(schema_with = crv_schema)]
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// Key id.
    pub kid: String,
    /// `EdDSA`.
    #[schema(schema_with = alg_schema)]
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    #[schema(schema_with = use_schema)]
    pub use_: String,
}

fn kty_schema() -> utoipa::openapi::Object {
    string_enum(&["OKP"])
}

fn crv_schema() -> utoipa::openapi::Object {
    string_enum(&["Ed25519"])
}

fn alg_schema() -> utoipa::openapi::Object {
    string_enum(&["EdDSA"])
}

fn use_schema() -> utoipa::openapi::Object {
    string_enum(&["sig"])
}

impl PublicJwk {
    fn of(kid: &str, key: &SigningKey) -> Self {
        PublicJwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: b64url_encode(key.verifying_key().as_bytes()),
            kid: kid.into(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        }
    }
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new active key id.
    pub kid: String,
    /// The demoted key id, if there was an active key.
    pub previous: Option<String>,
    /// How many expired previous keys were retired (private key destroyed).
    pub retired: u64,
}

/// The active key, created on first use. Concurrent first uses race on the one-active index;
/// the loser re-reads the winner's key.
pub async fn active_key<P: Platform>(p: &P) -> Result<ActiveKey, SigningKeyError> {
    let master = MasterKey::load(p.secrets())?;
    for _ in 0..2 {
        if let Some(k) = read_active(p, &master).await? {
            return Ok(k);
        }
        let (kid, key, stmts) = new_key_statements(p, &master, None);
        match p.sql().batch(stmts).await {
            Ok(_) => {
                refresh_jwks_cache(p).await;
                return Ok(ActiveKey { kid, key });
            }
            Err(SqlError::Constraint(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    read_active(p, &master)
        .await?
        .ok_or(SigningKeyError::Storage(SqlError::Other(
            "no active signing key after creating one".into(),
        )))
}

async fn read_active<P: Platform>(
    p: &P,
    master: &MasterKey,
) -> Result<Option<ActiveKey>, SigningKeyError> {
    let rows = p
        .sql()
        .query(Stmt::new(
            "SELECT kid, private_key_enc FROM signing_keys WHERE status = 'active'",
        ))
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let kid = row.text("kid")?;
    let sealed = row.text("private_key_enc")?;
    let seed = master
        .open(&kid, &sealed)
        .map_err(|_| SigningKeyError::Undecryptable)?;
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| SigningKeyError::Undecryptable)?;
    Ok(Some(ActiveKey {
        kid,
        key: SigningKey::from_bytes(&seed),
    }))
}

/// A fresh key and the statements inserting it as active (after demoting `previous`, if any).
fn new_key_statements<P: Platform>(
    p: &P,
    master: &MasterKey,
    audit_record: Option<&AuditRecord>,
) -> (String, SigningKey, Vec<Stmt>) {
    let now = p.clock().now_ms();
    let kid = ids::new_ordered_id(p.clock(), p.random());
    let mut seed = [0u8; 32];
    p.random().fill(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let sealed = master.seal(p.random(), &kid, &seed);
    let jwk = serde_json::to_string(&PublicJwk::of(&kid, &key)).unwrap_or_default();
    let mut stmts = vec![Stmt::new(
        "INSERT INTO signing_keys (kid, alg, public_jwk, private_key_enc, status, created_at)
         VALUES (?1, 'EdDSA', ?2, ?3, 'active', ?4)",
    )
    .bind(kid.as_str())
    .bind(jwk)
    .bind(sealed)
    .bind(now)];
    if let Some(rec) = audit_record {
        let rec = rec.clone().with("kid", kid.as_str());
        stmts.push(audit::outbox_insert(&rec, &audit::new_event_id(p), now));
    }
    (kid, key, stmts)
}

/// Rotates (operator request or yearly cron): in one batch, retires previous keys whose tokens
/// have all expired (destroying their private key), demotes the active key to `previous` for
/// [`PREVIOUS_KEY_GRACE_MS`], inserts a new active key, and audits `signing_key.rotate`.
pub async fn rotate<P: Platform>(
    p: &P,
    actor: &Actor,
    request_id: Option<&str>,
) -> Result<Rotation, SigningKeyError> {
    let master = MasterKey::load(p.secrets())?;
    let now = p.clock().now_ms();
    let current = p
        .sql()
        .query(Stmt::new(
            "SELECT kid FROM signing_keys WHERE status = 'active'",
        ))
        .await?;
    let previous = current.first().map(|r| r.text("kid")).transpose()?;
    let record = AuditRecord::success(
        "signing_key.rotate",
        actor,
        None,
        "signing_keys",
        request_id,
    )
    .with(
        "previous_kid",
        previous.clone().map_or(json!(null), Into::into),
    );
    let mut stmts = vec![
        retire_statement(now),
        Stmt::new(
            "UPDATE signing_keys SET status = 'previous', not_after = ?1 WHERE status = 'active'",
        )
        .bind(now + PREVIOUS_KEY_GRACE_MS),
    ];
    let (kid, _key, inserts) = new_key_statements(p, &master, Some(&record));
    stmts.extend(inserts);
    let counts = p.sql().batch(stmts).await?;
    refresh_jwks_cache(p).await;
    Ok(Rotation {
        kid,
        previous,
        retired: counts.first().copied().unwrap_or(0),
    })
}

fn retire_statement(now: i64) -> Stmt {
    Stmt::new(
        "UPDATE signing_keys SET status = 'retired', private_key_enc = NULL, retired_at = ?1
         WHERE status = 'previous' AND not_after < ?1",
    )
    .bind(now)
}

/// The cron job: rotates when the active key is older than [`ROTATE_AFTER_MS`] (or creates the
/// first one if a master key is configured), and retires expired previous keys. Returns how
/// many keys it created or retired. Without a master key there is nothing to rotate: `Ok(0)`.
pub async fn scheduled_rotation<P: Platform>(p: &P, now: i64) -> Result<u64, SigningKeyError> {
    if MasterKey::load(p.secrets()).is_err() {
        return Ok(0);
    }
    let rows = p
        .sql()
        .query(Stmt::new(
            "SELECT created_at FROM signing_keys WHERE status = 'active'",
        ))
        .await?;
    let due = match rows.first() {
        Some(r) => r.i64("created_at")? + ROTATE_AFTER_MS <= now,
        None => false,
    };
    if due {
        let r = rotate(p, &Actor::system("signing-key-rotation"), None).await?;
        return Ok(1 + r.retired);
    }
    let retired = p.sql().execute(retire_statement(now)).await?;
    if retired > 0 {
        refresh_jwks_cache(p).await;
    }
    Ok(retired)
}

/// The published keys (active and previous, not past `not_after`), from D1.
pub async fn published_from_sql<P: Platform>(p: &P) -> Result<Vec<PublicJwk>, SqlError> {
    let now = p.clock().now_ms();
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT public_jwk FROM signing_keys
                 WHERE status = 'active' OR (status = 'previous' AND not_after >= ?1)
                 ORDER BY status, created_at DESC",
            )
            .bind(now),
        )
        .await?;
    rows.iter()
        .map(|r| {
            let text = r.text("public_jwk")?;
            serde_json::from_str(&text).map_err(|e| SqlError::Decode(format!("public_jwk: {e}")))
        })
        .collect()
}

/// The published keys: held in the isolate's memory within the bounds of [`crate::edge`], else
/// the KV copy, else D1 (and the KV copy rewritten).
pub async fn published<P: Platform>(p: &P) -> Result<Vec<PublicJwk>, SqlError> {
    let held = edge::read(p, JWKS_KV_KEY, Some(JWKS_KV_CACHE_TTL_SECS), |v| {
        v.and_then(|bytes| serde_json::from_slice::<Vec<PublicJwk>>(&bytes).ok())
    })
    .await;
    if let Ok(Some(keys)) = held.as_deref() {
        return Ok(keys.clone());
    }
    let keys = published_from_sql(p).await?;
    if let Ok(bytes) = serde_json::to_vec(&keys) {
        // Nothing changed: this is the cache of what D1 holds. A failed write only costs the
        // next verifier a D1 read.
        if edge::fill(p, JWKS_KV_KEY, &bytes, Some(JWKS_KV_TTL_SECS))
            .await
            .is_ok()
        {
            edge::remember(p, JWKS_KV_KEY, Rc::new(Some(keys.clone())));
        }
    }
    Ok(keys)
}

/// The published key named `kid`: the KV copy first, D1 when the copy does not know it (a
/// rotation the copy has not seen yet).
pub async fn published_key<P: Platform>(p: &P, kid: &str) -> Result<Option<PublicJwk>, SqlError> {
    let keys = published(p).await?;
    published_key_in(p, &keys, kid).await
}

/// [`published_key`] given the key set [`published`] returned.
pub async fn published_key_in<P: Platform>(
    p: &P,
    keys: &[PublicJwk],
    kid: &str,
) -> Result<Option<PublicJwk>, SqlError> {
    if let Some(k) = keys.iter().find(|k| k.kid == kid) {
        return Ok(Some(k.clone()));
    }
    Ok(published_from_sql(p)
        .await?
        .into_iter()
        .find(|k| k.kid == kid))
}

async fn refresh_jwks_cache<P: Platform>(p: &P) {
    if let Ok(keys) = published_from_sql(p).await {
        put_cache(p, &keys).await;
    }
}

/// Rewrites the KV copy of the key set after a rotation or retirement and announces it: every
/// isolate serves the new set within the bounds of [`crate::edge`].
async fn put_cache<P: Platform>(p: &P, keys: &[PublicJwk]) {
    if let Ok(bytes) = serde_json::to_vec(keys) {
        // A failed write leaves the KV copy to its TTL: verifiers fall back to D1 for a `kid`
        // they do not know, and the JWKS document catches up when the copy expires.
        let _ = edge::put(p, JWKS_KV_KEY, &bytes, Some(JWKS_KV_TTL_SECS)).await;
    }
}
