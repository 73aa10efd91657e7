//! A per-isolate token bucket per API key on the flag delivery routes: a guard against a
//! runaway client (a polling loop gone wrong), answered with 429 and `Retry-After`. It counts
//! in one isolate's memory only, so it is not a quota: Workers spreads a key's requests over
//! many isolates and locations, and Spin instantiates per request (where it never fires). A
//! shared limit would need a Durable Object per key, a round trip the hot path does not take.

use std::cell::RefCell;
use std::collections::HashMap;

/// Default sustained rate per key and isolate (requests per second); the bucket holds one
/// second of it. `FLAGS_RATE_LIMIT_PER_SECOND` overrides it; `0` turns the guard off.
pub const DEFAULT_PER_SECOND: u32 = 5_000;

/// Most keys one isolate tracks; past it the table starts afresh.
const CAPACITY: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

thread_local! {
    static BUCKETS: RefCell<HashMap<String, Bucket>> = RefCell::new(HashMap::new());
}

/// Takes one token of `key`'s bucket at `now_ms` for a limit of `per_second`. `Err` carries the
/// seconds until a token is available (at least 1), for `Retry-After`.
pub fn take(key: &str, now_ms: i64, per_second: u32) -> Result<(), u32> {
    if per_second == 0 {
        return Ok(());
    }
    let rate = f64::from(per_second);
    BUCKETS.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() >= CAPACITY && !b.contains_key(key) {
            b.clear();
        }
        let bucket = b.entry(key.to_owned()).or_insert(Bucket {
            tokens: rate,
            at_ms: now_ms,
        });
        let elapsed = now_ms.saturating_sub(bucket.at_ms).max(0) as f64;
        bucket.tokens = (bucket.tokens + elapsed * rate / 1000.0).min(rate);
        bucket.at_ms = bucket.at_ms.max(now_ms);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait_s = ((1.0 - bucket.tokens) / rate).ceil();
            Err((wait_s as u32).max(1))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ERR-RATE-429: a burst beyond one second of the rate is refused with a retry delay, and
    /// tokens come back with time; keys are counted apart; 0 disables.
    #[test]
    fn err_rate_429_bucket_refuses_a_burst_and_refills() {
        let key = "k-limit-test";
        for _ in 0..10 {
            assert_eq!(take(key, 1_000, 10), Ok(()));
        }
        assert_eq!(take(key, 1_000, 10), Err(1));
        assert_eq!(take("another-key", 1_000, 10), Ok(()));
        // 100 ms later one token is back, not two.
        assert_eq!(take(key, 1_100, 10), Ok(()));
        assert_eq!(take(key, 1_100, 10), Err(1));
        // A clock that steps back does not mint tokens.
        assert_eq!(take(key, 900, 10), Err(1));
        for _ in 0..1000 {
            assert_eq!(take("unlimited", 0, 0), Ok(()));
        }
    }
}
