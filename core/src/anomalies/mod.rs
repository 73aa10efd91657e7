//! Per-tenant anomaly signals (NFR-MON-001, CON-MON-001): what the anomaly rules of the alerts
//! (`crate::alerts::anomalies`) judge, recorded cheaply where it happens.
//!
//! - Refused password sign-ins and refresh-token reuse detections add to a per-tenant count of
//!   the minute (`anomaly_counts`): one upsert on a path that already writes its audit record.
//! - A sign-in that starts a session notes the account's client address, an API key used at the
//!   edge notes the key's (`anomaly_addresses`). Addresses are stored only as a keyed hash
//!   ([`address_hash`]): HMAC-SHA256 under a key derived from `MASTER_KEY`, so a dump of the
//!   database cannot be matched against a list of addresses without the master key.
//! - The edge hot paths write nothing per request: an API key's addresses are gathered in the
//!   isolate's memory ([`note_key_use`]) and go to storage with the request metrics' flush
//!   (`crate::metrics::flush`), each distinct address once per key and hour.
//!
//! This module depends on the ports only: sign-in, sessions and the metrics call it, and the
//! alert rules read what it recorded.

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::crypto;
use crate::ports::{Logger, Platform, Secrets, Sql, SqlError, Stmt};
use crate::tokens::master_key::MASTER_KEY_SECRET;

/// What separates the address-hash key from every other use of the master key.
const ADDRESS_KEY_LABEL: &[u8] = b"edgeplane/anomalies/address-hash/v1";

/// Hex digits kept of an address hash (128 bits).
const ADDRESS_HASH_HEX: usize = 32;

/// Distinct addresses an isolate gathers per key and hour; more say nothing the rule needs.
pub const MAX_ADDRESSES_PER_KEY_HOUR: usize = 1_000;

/// Distinct (key, hour, address) entries an isolate holds at most.
pub const MAX_KEY_ENTRIES: usize = 20_000;

/// Address rows one flush writes at most; the rest wait for the next flush.
pub const MAX_FLUSH_ROWS: usize = 500;

/// Per-tenant counts are kept this long (minutes: one day).
pub const COUNT_RETENTION_MINUTES: i64 = 24 * 60;

/// An account's address rows are kept this long (ms: two hours).
pub const ACCOUNT_RETENTION_MS: i64 = 2 * 60 * 60_000;

/// An API key's hourly counts are kept this long (hours: eight days).
pub const KEY_HOUR_RETENTION: i64 = 8 * 24;

const HOUR_MS: i64 = 60 * 60_000;

/// A counted signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// A refused password sign-in (wrong password, unknown or inactive account, rate limited).
    SignInFailed,
    /// A rotated refresh token presented again (the session was revoked).
    RefreshReuse,
}

impl Signal {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::SignInFailed => "sign_in_failed",
            Signal::RefreshReuse => "refresh_reuse",
        }
    }
}

/// The keyed hash of a client address: hex HMAC-SHA256 of the address under a key derived from
/// `MASTER_KEY`, truncated to 128 bits. `None` without a master key (then nothing is recorded:
/// an unkeyed hash of an IPv4 address is reversed by trying them all).
pub fn address_hash<S: Secrets + ?Sized>(secrets: &S, addr: &str) -> Option<String> {
    let keyed = address_key(secrets)?;
    Some(hash_with(&keyed, addr))
}

/// The HMAC keyed for address hashes.
fn address_key<S: Secrets + ?Sized>(secrets: &S) -> Option<Hmac<Sha256>> {
    let master = secrets.get(MASTER_KEY_SECRET)?;
    let master = master.trim();
    if master.is_empty() {
        return None;
    }
    let mut derive = Hmac::<Sha256>::new_from_slice(master.as_bytes()).ok()?;
    derive.update(ADDRESS_KEY_LABEL);
    Hmac::<Sha256>::new_from_slice(&derive.finalize().into_bytes()).ok()
}

fn hash_with(keyed: &Hmac<Sha256>, addr: &str) -> String {
    let mut m = keyed.clone();
    m.update(addr.as_bytes());
    let mut hex = crypto::hex(&m.finalize().into_bytes());
    hex.truncate(ADDRESS_HASH_HEX);
    hex
}

/// The subject of a tenant user's address rows.
pub fn user_subject(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// The subject of an API key's address rows.
pub fn key_subject(key_id: &str) -> String {
    format!("key:{key_id}")
}

/// Logs a signal that could not be written: the signal is lost, the request goes on.
fn log_lost<P: Platform>(p: &P, what: &str, e: &SqlError) {
    let line = serde_json::json!({
        "level": "warn",
        "msg": "anomaly signal not recorded",
        "signal": what,
        "error": e.to_string(),
    });
    p.logger().line(&line.to_string());
}

/// The statement adding one to a tenant's count of `signal` in the minute of `now`, the tenant
/// named by id.
pub fn count_stmt(signal: Signal, tenant_id: &str, now: i64) -> Stmt {
    Stmt::new(
        "INSERT INTO anomaly_counts (tenant_id, signal, minute, count) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (tenant_id, signal, minute) DO UPDATE SET count = count + 1",
    )
    .bind(tenant_id)
    .bind(signal.as_str())
    .bind(now.div_euclid(60_000))
}

/// Counts a refused password sign-in in the tenant of `tenant_domain` (nothing when no tenant
/// has that domain). Best effort: a failure is logged, never the sign-in's.
pub async fn failed_sign_in<P: Platform>(p: &P, tenant_domain: &str, now: i64) {
    let stmt = Stmt::new(
        "INSERT INTO anomaly_counts (tenant_id, signal, minute, count)
         SELECT id, ?2, ?3, 1 FROM tenants WHERE domain = ?1
         ON CONFLICT (tenant_id, signal, minute) DO UPDATE SET count = count + 1",
    )
    .bind(tenant_domain)
    .bind(Signal::SignInFailed.as_str())
    .bind(now.div_euclid(60_000));
    if let Err(e) = p.sql().execute(stmt).await {
        log_lost(p, Signal::SignInFailed.as_str(), &e);
    }
}

/// Counts a refresh-token reuse detection in `tenant_id`. Best effort, like
/// [`failed_sign_in`].
pub async fn refresh_reused<P: Platform>(p: &P, tenant_id: &str, now: i64) {
    let stmt = count_stmt(Signal::RefreshReuse, tenant_id, now);
    if let Err(e) = p.sql().execute(stmt).await {
        log_lost(p, Signal::RefreshReuse.as_str(), &e);
    }
}

/// The statement noting that `subject` was seen from the address hashed `addr_hash` at `now`.
fn address_stmt(subject: &str, tenant_id: Option<&str>, addr_hash: &str, seen_at: i64) -> Stmt {
    Stmt::new(
        "INSERT INTO anomaly_addresses (subject, hour, addr_hash, tenant_id, seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (subject, hour, addr_hash) DO UPDATE
           SET seen_at = MAX(seen_at, excluded.seen_at)",
    )
    .bind(subject)
    .bind(seen_at.div_euclid(HOUR_MS))
    .bind(addr_hash)
    .bind(tenant_id)
    .bind(seen_at)
}

/// Notes the client address of a sign-in that started a session of `user_id` in `tenant_id`
/// (nothing when the runtime vouched for no address). Best effort, like [`failed_sign_in`].
pub async fn signed_in<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
    client: Option<&str>,
    now: i64,
) {
    let Some(stmt) = signed_in_stmt(p.secrets(), tenant_id, user_id, client, now) else {
        return;
    };
    if let Err(e) = p.sql().execute(stmt).await {
        log_lost(p, "sign_in_address", &e);
    }
}

/// The statement of [`signed_in`], for a caller that writes it in its own batch (a sign-in's
/// decision is recorded with it, so the rule costs no round trip of its own); `None` when
/// there is no address or no key to hash it with.
pub fn signed_in_stmt<S: Secrets + ?Sized>(
    secrets: &S,
    tenant_id: &str,
    user_id: &str,
    client: Option<&str>,
    now: i64,
) -> Option<Stmt> {
    let hash = client.and_then(|addr| address_hash(secrets, addr))?;
    Some(address_stmt(
        &user_subject(user_id),
        Some(tenant_id),
        &hash,
        now,
    ))
}

/// One API key's addresses in one hour, as the isolate holds them.
#[derive(Debug, Default)]
struct KeyHour {
    tenant_id: Option<String>,
    /// Address, and whether it was written already.
    addresses: HashMap<String, bool>,
}

/// The API keys' addresses this isolate saw, by hour and key id.
#[derive(Debug, Default)]
struct KeyUses {
    hours: HashMap<i64, HashMap<String, KeyHour>>,
    entries: usize,
    unwritten: usize,
}

thread_local! {
    static KEY_USES: RefCell<KeyUses> = RefCell::new(KeyUses::default());
}

/// Notes in the isolate's memory that API key `key_id` (bound to `tenant_id`, if any) was used
/// from `client` at `now`: no storage call. The address itself stays in memory; only its keyed
/// hash is written, by the next request-metrics flush.
pub fn note_key_use(key_id: &str, tenant_id: Option<&str>, client: Option<&str>, now: i64) {
    let Some(addr) = client else { return };
    let hour = now.div_euclid(HOUR_MS);
    KEY_USES.with(|k| {
        let mut k = k.borrow_mut();
        let known = k.hours.get(&hour).and_then(|keys| keys.get(key_id));
        if known.is_some_and(|h| {
            h.addresses.contains_key(addr) || h.addresses.len() >= MAX_ADDRESSES_PER_KEY_HOUR
        }) {
            return;
        }
        if k.entries >= MAX_KEY_ENTRIES {
            return;
        }
        let entry = k
            .hours
            .entry(hour)
            .or_default()
            .entry(key_id.to_owned())
            .or_insert_with(|| KeyHour {
                tenant_id: tenant_id.map(str::to_owned),
                addresses: HashMap::new(),
            });
        entry.addresses.insert(addr.to_owned(), false);
        k.entries += 1;
        k.unwritten += 1;
    });
}

/// Whether the isolate holds key addresses not written yet.
pub fn key_uses_pending() -> bool {
    KEY_USES.with(|k| k.borrow().unwritten > 0)
}

/// The statements writing up to [`MAX_FLUSH_ROWS`] key addresses not written yet, hashed, and
/// the entries they stand for (to mark written with [`mark_key_uses_written`], or leave for the
/// next flush). Hours before the previous one are forgotten here. Without a master key nothing
/// is written and the memory is emptied.
pub fn key_use_stmts<S: Secrets + ?Sized>(
    secrets: &S,
    now: i64,
) -> (Vec<Stmt>, Vec<(i64, String, String)>) {
    let current = now.div_euclid(HOUR_MS);
    KEY_USES.with(|k| {
        let mut k = k.borrow_mut();
        k.hours.retain(|hour, _| *hour >= current - 1);
        let Some(keyed) = address_key(secrets) else {
            *k = KeyUses::default();
            return (Vec::new(), Vec::new());
        };
        let mut stmts = Vec::new();
        let mut taken = Vec::new();
        let seen_at = now;
        'all: for (hour, keys) in &k.hours {
            for (key_id, h) in keys {
                let subject = key_subject(key_id);
                for (addr, _) in h.addresses.iter().filter(|(_, written)| !**written) {
                    if stmts.len() >= MAX_FLUSH_ROWS {
                        break 'all;
                    }
                    // A sighting of a past hour is dated within that hour.
                    let at = seen_at.min((hour + 1) * HOUR_MS - 1);
                    let hash = hash_with(&keyed, addr);
                    stmts.push(address_stmt(&subject, h.tenant_id.as_deref(), &hash, at));
                    taken.push((*hour, key_id.clone(), addr.clone()));
                }
            }
        }
        let entries = k
            .hours
            .values()
            .flat_map(|keys| keys.values())
            .map(|h| h.addresses.len())
            .sum();
        let unwritten = k
            .hours
            .values()
            .flat_map(|keys| keys.values())
            .map(|h| h.addresses.values().filter(|w| !**w).count())
            .sum();
        k.entries = entries;
        k.unwritten = unwritten;
        (stmts, taken)
    })
}

/// Marks the entries [`key_use_stmts`] returned as written, once their batch succeeded.
pub fn mark_key_uses_written(taken: &[(i64, String, String)]) {
    KEY_USES.with(|k| {
        let mut k = k.borrow_mut();
        let mut marked = 0;
        for (hour, key_id, addr) in taken {
            if let Some(w) = k
                .hours
                .get_mut(hour)
                .and_then(|keys| keys.get_mut(key_id))
                .and_then(|h| h.addresses.get_mut(addr))
            {
                if !*w {
                    *w = true;
                    marked += 1;
                }
            }
        }
        k.unwritten = k.unwritten.saturating_sub(marked);
    });
}

/// Forgets what this thread's isolate gathered (tests share threads).
#[cfg(test)]
pub fn clear_isolate() {
    KEY_USES.with(|k| *k.borrow_mut() = KeyUses::default());
}

/// Per tenant, the count of `signal` over the minutes from `from_minute` on.
pub async fn counts_since<P: Platform>(
    p: &P,
    signal: Signal,
    from_minute: i64,
) -> Result<Vec<(String, i64)>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT tenant_id, SUM(count) AS n FROM anomaly_counts
                 WHERE signal = ?1 AND minute >= ?2
                 GROUP BY tenant_id ORDER BY tenant_id",
            )
            .bind(signal.as_str())
            .bind(from_minute),
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.text("tenant_id")?, r.i64("n")?)))
        .collect()
}

/// Distinct addresses a subject was seen from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressCount {
    /// `user:ID` or `key:ID`.
    pub subject: String,
    /// Its tenant (none for an app-wide key).
    pub tenant_id: Option<String>,
    /// Distinct address hashes.
    pub addresses: i64,
}

/// Per subject of `kind` (`user` or `key`), the distinct addresses seen since `since_ms`, for
/// the subjects with more than `above`.
pub async fn addresses_since<P: Platform>(
    p: &P,
    kind: &str,
    since_ms: i64,
    above: i64,
) -> Result<Vec<AddressCount>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT subject, MAX(tenant_id) AS tenant_id, COUNT(DISTINCT addr_hash) AS n
                 FROM anomaly_addresses
                 WHERE subject > ?1 AND subject < ?2 AND hour >= ?3 AND seen_at >= ?4
                 GROUP BY subject HAVING COUNT(DISTINCT addr_hash) > ?5 ORDER BY subject",
            )
            .bind(format!("{kind}:"))
            .bind(format!("{kind};"))
            .bind(since_ms.div_euclid(HOUR_MS))
            .bind(since_ms)
            .bind(above),
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AddressCount {
                subject: r.text("subject")?,
                tenant_id: r.opt_text("tenant_id")?,
                addresses: r.i64("n")?,
            })
        })
        .collect()
}

/// The most distinct addresses `subject` (a key) was used from in one hour of the hours
/// `from_hour` to `to_hour` (exclusive); 0 without history.
pub async fn key_baseline<P: Platform>(
    p: &P,
    subject: &str,
    from_hour: i64,
    to_hour: i64,
) -> Result<i64, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT COALESCE(MAX(addresses), 0) AS n FROM anomaly_key_hours
                 WHERE subject = ?1 AND hour >= ?2 AND hour < ?3",
            )
            .bind(subject)
            .bind(from_hour)
            .bind(to_hour),
        )
        .await?;
    rows.first().map_or(Ok(0), |r| r.i64("n"))
}

/// The scheduled upkeep at `now`: the keys' finished hours rolled up into their hourly counts
/// (the baselines), then the rows past their retention deleted. Returns the rows changed.
pub async fn upkeep<P: Platform>(p: &P, now: i64) -> Result<u64, SqlError> {
    let hour = now.div_euclid(HOUR_MS);
    let minute = now.div_euclid(60_000);
    let changed = p
        .sql()
        .batch(vec![
            Stmt::new(
                "INSERT INTO anomaly_key_hours (subject, hour, tenant_id, addresses)
                 SELECT subject, hour, MAX(tenant_id), COUNT(*) FROM anomaly_addresses
                 WHERE subject > 'key:' AND subject < 'key;' AND hour < ?1
                 GROUP BY subject, hour
                 ON CONFLICT (subject, hour) DO UPDATE
                   SET addresses = MAX(addresses, excluded.addresses)",
            )
            .bind(hour),
            Stmt::new(
                "DELETE FROM anomaly_addresses
                 WHERE subject > 'key:' AND subject < 'key;' AND hour < ?1",
            )
            .bind(hour - 1),
            Stmt::new(
                "DELETE FROM anomaly_addresses
                 WHERE subject > 'user:' AND subject < 'user;' AND seen_at < ?1",
            )
            .bind(now - ACCOUNT_RETENTION_MS),
            Stmt::new("DELETE FROM anomaly_key_hours WHERE hour < ?1")
                .bind(hour - KEY_HOUR_RETENTION),
            Stmt::new("DELETE FROM anomaly_counts WHERE minute < ?1")
                .bind(minute - COUNT_RETENTION_MINUTES),
        ])
        .await?;
    Ok(changed.iter().sum())
}
