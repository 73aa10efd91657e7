//! Rate limits of failed sign-in and second-factor attempts (ERR-RATE-429), per account and per
//! client address: fixed windows counted in the `rate_limits` table, the same SQL on Workers and
//! Spin. Subjects are stored only as SHA-256 hashes, so no address or email is kept in clear.
//! A subject over its limit is refused before any password hashing, which also bounds the CPU
//! an attacker can make Edgeplane spend.

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
    key: String,
    max: i64,
    window_end_ms: i64,
}

impl Counter {
    /// The counter of `limit` for `subject` in the window holding `now_ms`.
    pub fn new(limit: Limit, subject: &str, now_ms: i64) -> Self {
        let window = now_ms.div_euclid(limit.window_ms);
        Counter {
            key: format!("{}:{}:{window}", limit.name, sha256_hex(subject.as_bytes())),
            max: limit.max,
            window_end_ms: (window + 1) * limit.window_ms,
        }
    }

    /// The statement counting one failure, for the batch that records it.
    pub fn hit(&self) -> Stmt {
        Stmt::new(
            "INSERT INTO rate_limits (key, count, expires_at) VALUES (?1, 1, ?2)
             ON CONFLICT (key) DO UPDATE SET count = count + 1",
        )
        .bind(self.key.as_str())
        .bind(self.window_end_ms)
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
    now_ms: i64,
) -> Result<Option<i64>, SqlError> {
    let mut wait = None;
    for c in counters {
        let rows = p
            .sql()
            .query(Stmt::new("SELECT count FROM rate_limits WHERE key = ?1").bind(c.key.as_str()))
            .await?;
        let count = rows
            .first()
            .map(|r| r.i64("count"))
            .transpose()?
            .unwrap_or(0);
        if count >= c.max {
            let secs = (c.window_end_ms - now_ms + 999).div_euclid(1000).max(1);
            wait = Some(wait.map_or(secs, |w: i64| w.max(secs)));
        }
    }
    Ok(wait)
}

/// Deletes the counters of finished windows (cron).
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

    /// ERR-RATE-429: the limit-th failure blocks until the window ends; subjects are hashed.
    #[test]
    fn err_rate_429_fixed_window_counts_and_expires() {
        block_on(async {
            let p = TestPlatform::new().await;
            let now = START_MS + 1000;
            let cs = counters(
                (LOGIN_PER_ACCOUNT, "acme|owner@acme.test"),
                (LOGIN_PER_CLIENT, Some("203.0.113.7")),
                now,
            );
            for _ in 0..LOGIN_PER_ACCOUNT.max - 1 {
                p.sql
                    .batch(cs.iter().map(Counter::hit).collect())
                    .await
                    .unwrap();
            }
            assert_eq!(retry_after(&p, &cs, now).await.unwrap(), None);
            p.sql
                .batch(cs.iter().map(Counter::hit).collect())
                .await
                .unwrap();
            let wait = retry_after(&p, &cs, now).await.unwrap().unwrap();
            assert!(wait > 0 && wait <= 15 * 60, "{wait}");
            let keys = p
                .sql
                .query(Stmt::new("SELECT key FROM rate_limits"))
                .await
                .unwrap();
            for k in &keys {
                let k = k.text("key").unwrap();
                assert!(!k.contains("203.0.113.7") && !k.contains("owner"), "{k}");
            }
            // The next window starts afresh; the cron removes the old one.
            let later = now + LOGIN_PER_ACCOUNT.window_ms;
            let next = counters(
                (LOGIN_PER_ACCOUNT, "acme|owner@acme.test"),
                (LOGIN_PER_CLIENT, Some("203.0.113.7")),
                later,
            );
            assert_eq!(retry_after(&p, &next, later).await.unwrap(), None);
            assert_eq!(expire(&p, later).await.unwrap(), 2);
        });
    }
}
