//! Rate limits of sign-in and second-factor attempts (ERR-RATE-429), per account and per client
//! address, for every path that checks a credential (sign-in, second factors, passkeys, SSO,
//! password change, TOTP changes) and for reset mails: sliding windows counted in the `rate_limits` table, the same SQL on Workers and
//! Spin. Each counted attempt is a row keyed `{limit}:{sha256(subject)}:{unix ms}` (two in the
//! same millisecond share a row and its count) that counts until `expires_at`, one window after
//! it happened: a subject is over its limit when the attempts of the last window reach it,
//! wherever the clock's window boundaries fall (fixed windows let twice the limit through
//! around a boundary). Subjects are stored only as SHA-256 hashes, so no address or email is
//! kept in clear.
//!
//! An attempt is counted *before* the work it guards, by one conditional statement per counter
//! ([`admit`]): the row is added only while the window holds fewer than the limit, so a burst of
//! concurrent requests cannot all pass a check that none of them has written yet (each
//! statement is atomic on D1, Spin SQLite and rusqlite alike). An attempt that turns out not to
//! be a failure (the right password) gives its place back ([`Held::release`]); a refused
//! attempt adds no row, which also bounds the CPU and the rows an attacker can make Edgeplane
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

    /// This attempt's row.
    fn key(&self) -> String {
        format!("{}{}", self.prefix, self.now_ms)
    }

    /// The exclusive upper end of this subject's key range: ';' follows ':' in ASCII, so
    /// `prefix < key < end` is exactly this subject's rows (a primary-key range).
    fn end(&self) -> String {
        format!("{};", &self.prefix[..self.prefix.len() - 1])
    }

    /// The statement counting this attempt only while the subject's window holds fewer than
    /// the limit: it changes one row when the attempt is admitted, none when it is refused.
    fn reserve(&self) -> Stmt {
        Stmt::new(
            "INSERT INTO rate_limits (key, count, expires_at)
             SELECT ?1, 1, ?2
             WHERE (SELECT COALESCE(SUM(count), 0) FROM rate_limits
                    WHERE key > ?3 AND key < ?4 AND expires_at > ?5) < ?6
             ON CONFLICT (key) DO UPDATE SET count = count + 1",
        )
        .bind(self.key())
        .bind(self.now_ms + self.window_ms)
        .bind(self.prefix.as_str())
        .bind(self.end())
        .bind(self.now_ms)
        .bind(self.max)
    }

    /// The statements giving this attempt's place back: the row goes when it was the last one
    /// counted in it, else its count drops by one (in this order, so exactly one applies).
    fn release(&self) -> [Stmt; 2] {
        [
            Stmt::new("DELETE FROM rate_limits WHERE key = ?1 AND count <= 1").bind(self.key()),
            Stmt::new("UPDATE rate_limits SET count = count - 1 WHERE key = ?1 AND count > 1")
                .bind(self.key()),
        ]
    }

    /// Milliseconds until the failures still counting drop below the limit; `None` when they
    /// are below it now.
    async fn wait_ms<P: Platform>(&self, p: &P) -> Result<Option<i64>, SqlError> {
        let end = self.end();
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

/// The key range `(after, before)` of `subject`'s rows of `limit`, for reading how many
/// failures are counting (`key > after AND key < before AND expires_at > now`): the risk
/// signals of `crate::risk` read the rate limiter's data this way.
pub fn key_range(limit: Limit, subject: &str) -> (String, String) {
    let c = Counter::new(limit, subject, 0);
    let end = c.end();
    (c.prefix, end)
}

/// The subject of an account's sign-in limits: its tenant domain and email, case-folded, so
/// sign-in and every other check of the password count together.
pub fn account_subject(tenant_domain: &str, email: &str) -> String {
    format!("{}|{}", tenant_domain.to_lowercase(), email.to_lowercase())
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

/// Attempts counted on their counters before the work they guard: dropping it keeps them
/// counted (the attempt failed); [`Held::release`] gives them back.
#[derive(Debug)]
#[must_use = "an attempt either stays counted (failure) or is released (success)"]
pub struct Held {
    counters: Vec<Counter>,
}

impl Held {
    /// Nothing held: for paths without a limit of their own.
    pub fn none() -> Self {
        Held {
            counters: Vec::new(),
        }
    }

    /// The attempt was not a failure (the right password, a valid code): it no longer counts.
    pub async fn release<P: Platform>(self, p: &P) -> Result<(), SqlError> {
        if self.counters.is_empty() {
            return Ok(());
        }
        p.sql().batch(self.release_stmts()).await.map(|_| ())
    }

    /// The statements of [`Held::release`], for a batch that does more.
    pub fn release_stmts(&self) -> Vec<Stmt> {
        self.counters.iter().flat_map(Counter::release).collect()
    }

    /// The attempt failed: it stays counted (what dropping does, said out loud).
    pub fn keep(self) {}
}

/// Whether an attempt may go on.
#[derive(Debug)]
pub enum Admission {
    /// Counted on every counter: do the work, then keep or release.
    Admitted(Held),
    /// A counter is at its limit: nothing was counted.
    Refused {
        /// Seconds until the attempt may be retried.
        retry_after_secs: i64,
    },
}

/// Counts an attempt on every counter, each only if its subject is below the limit, before
/// the work it guards. When any counter refuses, the others give their place back and the
/// attempt is [`Admission::Refused`].
pub async fn admit<P: Platform>(p: &P, counters: Vec<Counter>) -> Result<Admission, SqlError> {
    if counters.is_empty() {
        return Ok(Admission::Admitted(Held::none()));
    }
    let changed = p
        .sql()
        .batch(counters.iter().map(Counter::reserve).collect())
        .await?;
    if changed.iter().all(|&n| n > 0) {
        return Ok(Admission::Admitted(Held { counters }));
    }
    let (admitted, refused): (Vec<_>, Vec<_>) =
        counters.into_iter().zip(changed).partition(|(_, n)| *n > 0);
    Held {
        counters: admitted.into_iter().map(|(c, _)| c).collect(),
    }
    .release(p)
    .await?;
    let mut wait = 1;
    for (c, _) in &refused {
        if let Some(ms) = c.wait_ms(p).await? {
            wait = wait.max((ms + 999).div_euclid(1000));
        }
    }
    Ok(Admission::Refused {
        retry_after_secs: wait,
    })
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
    use futures_util::future::join_all;

    async fn admitted(p: &TestPlatform, cs: Vec<Counter>) -> Option<Held> {
        match admit(p, cs).await.unwrap() {
            Admission::Admitted(h) => Some(h),
            Admission::Refused { .. } => None,
        }
    }

    async fn retry_after(p: &TestPlatform, cs: Vec<Counter>) -> Option<i64> {
        match admit(p, cs).await.unwrap() {
            Admission::Admitted(h) => {
                h.release(p).await.unwrap();
                None
            }
            Admission::Refused { retry_after_secs } => Some(retry_after_secs),
        }
    }

    async fn count_rows(p: &TestPlatform) -> i64 {
        p.sql
            .query(Stmt::new(
                "SELECT COALESCE(SUM(count), 0) AS n FROM rate_limits",
            ))
            .await
            .unwrap()[0]
            .i64("n")
            .unwrap()
    }

    /// ERR-RATE-429: the limit-th kept attempt blocks until the oldest is a window old;
    /// subjects are hashed; a refused attempt counts nowhere.
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
                admitted(&p, at(t0 + i)).await.unwrap().keep();
            }
            assert_eq!(retry_after(&p, at(t0 + 20)).await, None);
            // Two attempts in the same millisecond both count.
            admitted(&p, at(t0 + 8)).await.unwrap().keep();
            let before = count_rows(&p).await;
            let wait = retry_after(&p, at(t0 + 20)).await.unwrap();
            // Until the oldest attempt (t0) is a window old.
            assert_eq!(wait, (LOGIN_PER_ACCOUNT.window_ms - 20 + 999) / 1000);
            // The refusal counted nowhere, not even on the client's counter that had room.
            assert_eq!(count_rows(&p).await, before);
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
            assert_eq!(retry_after(&p, other).await, None);
            // Once the oldest attempt is a window old, nine count: below the limit again.
            let later = t0 + LOGIN_PER_ACCOUNT.window_ms;
            assert!(retry_after(&p, at(later - 1)).await.is_some());
            assert_eq!(retry_after(&p, at(later)).await, None);
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
                admitted(&p, at(boundary - 5 + i)).await.unwrap().keep();
            }
            assert!(retry_after(&p, at(boundary + 10)).await.is_some());
            assert!(retry_after(&p, at(boundary + w / 2)).await.is_some());
            assert_eq!(retry_after(&p, at(boundary + w)).await, None);
        });
    }

    /// A released attempt no longer counts, whether it shared its millisecond's row or not.
    #[test]
    fn released_attempts_give_their_place_back() {
        block_on(async {
            let p = TestPlatform::new().await;
            let at = |ms: i64| vec![Counter::new(MFA_PER_ACCOUNT, "user-1", ms)];
            let kept = admitted(&p, at(START_MS)).await.unwrap();
            let same_ms = admitted(&p, at(START_MS)).await.unwrap();
            kept.keep();
            same_ms.release(&p).await.unwrap();
            assert_eq!(count_rows(&p).await, 1);
            for i in 1..=20 {
                admitted(&p, at(START_MS + i))
                    .await
                    .unwrap()
                    .release(&p)
                    .await
                    .unwrap();
            }
            assert_eq!(count_rows(&p).await, 1);
            let rows = p
                .sql
                .query(Stmt::new("SELECT count(*) AS n FROM rate_limits"))
                .await
                .unwrap();
            assert_eq!(rows[0].i64("n").unwrap(), 1, "released rows are deleted");
        });
    }

    /// ERR-RATE-429 under concurrency: attempts that interleave at every statement, as
    /// concurrent requests of one isolate do, are admitted exactly up to the limit (a check
    /// followed by a separate write admits every one of them).
    #[test]
    fn err_rate_429_concurrent_attempts_are_admitted_up_to_the_limit() {
        block_on(async {
            let p = TestPlatform::new().await;
            p.sql.interleave();
            let burst = (0..3 * MFA_PER_ACCOUNT.max)
                .map(|_| admit(&p, vec![Counter::new(MFA_PER_ACCOUNT, "user-1", START_MS)]));
            let outcomes = join_all(burst).await;
            let admitted = outcomes
                .iter()
                .filter(|o| matches!(o, Ok(Admission::Admitted(_))))
                .count();
            assert_eq!(admitted as i64, MFA_PER_ACCOUNT.max);
            assert_eq!(count_rows(&p).await, MFA_PER_ACCOUNT.max);
        });
    }
}
