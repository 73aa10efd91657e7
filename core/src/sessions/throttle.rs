//! Rate limits of failed sign-in and second-factor attempts (ERR-RATE-429), per account and per
//! client address: sliding windows counted in the `rate_limits` table, the same SQL on Workers
//! and Spin. Each failure is a row keyed `{limit}:{sha256(subject)}:{unix ms}` (two failures in
//! the same millisecond share a row and its count) that counts until `expires_at`, one window
//! after it happened: a subject is over its limit when the failures of the last window reach
//! it, wherever the clock's window boundaries fall (fixed windows let twice the limit through
//! around a boundary). Subjects are stored only as SHA-256 hashes, so no address or email is
//! kept in clear. A subject over its limit is refused before any password hashing, and refused
//! attempts add no row, which also bounds the CPU and the rows an attacker can make Edgeplane
//! spend.

use crate::crypto::sha256_hex;
use crate::ports::{Platform, Sql, SqlError, Stmt};

/// One limit: at most `max` failures per `window_ms` for one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Stable name, the key prefix.
    pub name: &'static str,
    /// Failures allowed per window.
    pub max: i64,
    /// Window length in milliseconds.
    pub window_ms: i64,
}

const FIFTEEN_MINUTES_MS: i64 = 15 * 60 * 1000;

/// Failed password sign-ins of one account (tenant domain and email).
pub const LOGIN_PER_ACCOUNT: Limit = Limit {
    name: "login-account",
    max: 10,
    window_ms: FIFTEEN_MINUTES_MS,
};
/// Failed password sign-ins from one client address, whatever the account.
pub const LOGIN_PER_CLIENT: Limit = Limit {
    name: "login-client",
    max: 50,
    window_ms: FIFTEEN_MINUTES_MS,
};
/// Wrong second factors of one user.
pub const MFA_PER_ACCOUNT: Limit = Limit {
    name: "mfa-account",
    max: 10,
    window_ms: FIFTEEN_MINUTES_MS,
};
/// Wrong second factors from one client address.
pub const MFA_PER_CLIENT: Limit = Limit {
    name: "mfa-client",
    max: 50,
    window_ms: FIFTEEN_MINUTES_MS,
};

/// Password reset mails to one account (sending, not failing: the forgot-password route
/// cannot flood an inbox).
pub const RESET_MAILS_PER_ACCOUNT: Limit = Limit {
    name: "reset-mail-account",
    max: 5,
    window_ms: FIFTEEN_MINUTES_MS,
};

/// One limit applied to one subject at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// `{limit}:{sha256(subject)}:`, the prefix of the subject's rows.
    prefix: String,
    max: i64,
    now_ms: i64,
    window_ms: i64,
}

impl Counter {
    /// The counter of `limit` for `subject`, for an attempt at `now_ms`.
    pub fn new(limit: Limit, subject: &str, now_ms: i64) -> Self {
        Counter {
            prefix: format!("{}:{}:", limit.name, sha256_hex(subject.as_bytes())),
            max: limit.max,
            now_ms,
            window_ms: limit.window_ms,
        }
    }

    /// The statement counting one failure, for the batch that records it.
    pub fn hit(&self) -> Stmt {
        Stmt::new(
            "INSERT INTO rate_limits (key, count, expires_at) VALUES (?1, 1, ?2)
             ON CONFLICT (key) DO UPDATE SET count = count + 1",
        )
        .bind(format!("{}{}", self.prefix, self.now_ms))
        .bind(self.now_ms + self.window_ms)
    }

    /// Milliseconds until the failures still counting drop below the limit; `None` when they
    /// are below it now.
    async fn wait_ms<P: Platform>(&self, p: &P) -> Result<Option<i64>, SqlError> {
        // ';' follows ':' in ASCII: the range is exactly this subject's rows (primary key).
        let end = format!("{};", &self.prefix[..self.prefix.len() - 1]);
        let rows = p
            .sql()
            .query(
                Stmt::new(
                    "SELECT count, expires_at FROM rate_limits
                     WHERE key > ?1 AND key < ?2 AND expires_at > ?3
                     ORDER BY expires_at",
                )
                .bind(self.prefix.as_str())
                .bind(end)
                .bind(self.now_ms),
            )
            .await?;
        let mut counting = 0;
        let mut entries = Vec::with_capacity(rows.len());
        for r in &rows {
            let n = r.i64("count")?;
            counting += n;
            entries.push((n, r.i64("expires_at")?));
        }
        // Oldest first: the limit clears when enough of the oldest failures have expired.
        for (n, expires_at) in entries {
            if counting < self.max {
                break;
            }
            counting -= n;
            if counting < self.max {
                return Ok(Some(expires_at - self.now_ms));
            }
        }
        Ok(None)
    }
}

/// The counters of one attempt: the account's, and the client's when its address is known.
pub fn counters(
    account: (Limit, &str),
    client: (Limit, Option<&str>),
    now_ms: i64,
) -> Vec<Counter> {
    let mut out = vec![Counter::new(account.0, account.1, now_ms)];
    if let Some(addr) = client.1 {
        out.push(Counter::new(client.0, addr, now_ms));
    }
    out
}

/// Seconds until the attempt may be retried if any counter is at its limit, else `None`.
pub async fn retry_after<P: Platform>(
    p: &P,
    counters: &[Counter],
) -> Result<Option<i64>, SqlError> {
    let mut wait = None;
    for c in counters {
        if let Some(ms) = c.wait_ms(p).await? {
            let secs = (ms + 999).div_euclid(1000).max(1);
            wait = Some(wait.map_or(secs, |w: i64| w.max(secs)));
        }
    }
    Ok(wait)
}

/// Deletes failures that no longer count (cron).
pub async fn expire<P: Platform>(p: &P, now_ms: i64) -> Result<u64, SqlError> {
    p.sql()
        .execute(Stmt::new("DELETE FROM rate_limits WHERE expires_at <= ?1").bind(now_ms))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestPlatform, START_MS};
    use futures_executor::block_on;

    async fn hit_all(p: &TestPlatform, cs: &[Counter]) {
        p.sql
            .batch(cs.iter().map(Counter::hit).collect())
            .await
            .unwrap();
    }

    /// ERR-RATE-429: the limit-th failure blocks until the oldest failure is a window old;
    /// subjects are hashed.
    #[test]
    fn err_rate_429_sliding_window_counts_and_expires() {
        block_on(async {
            let p = TestPlatform::new().await;
            let at = |ms: i64| {
                counters(
                    (LOGIN_PER_ACCOUNT, "acme|owner@acme.test"),
                    (LOGIN_PER_CLIENT, Some("203.0.113.7")),
                    ms,
                )
            };
            let t0 = START_MS + 1000;
            for i in 0..LOGIN_PER_ACCOUNT.max - 1 {
                hit_all(&p, &at(t0 + i)).await;
            }
            assert_eq!(retry_after(&p, &at(t0 + 20)).await.unwrap(), None);
            // Two failures in the same millisecond both count.
            hit_all(&p, &at(t0 + 8)).await;
            let wait = retry_after(&p, &at(t0 + 20)).await.unwrap().unwrap();
            // Until the oldest failure (t0) is a window old.
            assert_eq!(wait, (LOGIN_PER_ACCOUNT.window_ms - 20 + 999) / 1000);
            let keys = p
                .sql
                .query(Stmt::new("SELECT key FROM rate_limits"))
                .await
                .unwrap();
            for k in &keys {
                let k = k.text("key").unwrap();
                assert!(!k.contains("203.0.113.7") && !k.contains("owner"), "{k}");
            }
            // Another subject is not affected.
            let other = counters(
                (LOGIN_PER_ACCOUNT, "acme|ana@acme.test"),
                (LOGIN_PER_CLIENT, Some("203.0.113.8")),
                t0 + 20,
            );
            assert_eq!(retry_after(&p, &other).await.unwrap(), None);
            // Once the oldest failure is a window old, nine count: below the limit again.
            let later = t0 + LOGIN_PER_ACCOUNT.window_ms;
            assert!(retry_after(&p, &at(later - 1)).await.unwrap().is_some());
            assert_eq!(retry_after(&p, &at(later)).await.unwrap(), None);
            // The cron drops the rows that no longer count (the account's and the client's).
            assert_eq!(expire(&p, later).await.unwrap(), 2);
        });
    }

    /// ERR-RATE-429: a boundary of the clock's 15-minute grid does not reset the count (fixed
    /// windows would let twice the limit through around it).
    #[test]
    fn err_rate_429_window_boundaries_do_not_reset_the_count() {
        block_on(async {
            let p = TestPlatform::new().await;
            let w = LOGIN_PER_ACCOUNT.window_ms;
            let boundary = (START_MS / w + 1) * w;
            let at = |ms: i64| vec![Counter::new(LOGIN_PER_ACCOUNT, "acme|owner@acme.test", ms)];
            for i in 0..LOGIN_PER_ACCOUNT.max {
                // Half before the boundary, half after.
                hit_all(&p, &at(boundary - 5 + i)).await;
            }
            assert!(retry_after(&p, &at(boundary + 10)).await.unwrap().is_some());
            assert!(retry_after(&p, &at(boundary + w / 2))
                .await
                .unwrap()
                .is_some());
            assert_eq!(retry_after(&p, &at(boundary + w)).await.unwrap(), None);
        });
    }
}
