//! What an isolate holds in memory of the KV values its hot paths read (revocation markers, API
//! key records, flag snapshots), and how it learns that one changed.
//!
//! Every write of such a value goes through [`put`] or [`delete`], which write KV and then
//! announce the change by writing a new value to one KV key, the change epoch. Readers go
//! through [`read`]: a value read once is served from memory, and the isolate reads the epoch at
//! most once per [`FRESHNESS_MS`]; when the epoch moved, it drops everything it read before the
//! change (an isolate starting up holds what it reads for its first second without reading the
//! epoch, and drops it at the first read if a change came since). So in
//! steady state (nothing changed) a hot path makes no storage call, and each isolate makes one
//! small KV read per second whatever its traffic.
//!
//! Freshness (the contract the README states and the tests pin):
//! - The isolate that made a change serves the new value at once (it drops its copy before and
//!   after the write).
//! - Every other isolate of the location where the change was written serves it within
//!   [`FRESHNESS_MS`] (KV shows a write at once in the location that made it).
//! - In other locations, KV itself takes up to a minute to show a write, and may show the epoch
//!   before the value it announces. So a value read within [`PROPAGATION_MS`] of the latest
//!   change is held for [`FRESHNESS_MS`] only and read again: a change is served everywhere
//!   within KV's propagation plus [`FRESHNESS_MS`].
//! - Nothing is held longer than [`MAX_AGE_MS`], whatever the epoch says: a lost announcement
//!   (a failed epoch write is reported to the writer, who retries) cannot keep a value forever.
//!
//! Spin instantiates a component per request, so there every read goes to the key-value store.
//! A hot path that knows the keys it is about to read asks for them first with [`prefetch`]: the
//! ones the isolate does not hold are read in one batched call, and each [`read`] then decodes
//! its value from memory (on Spin one host call into the store instead of one per key).

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::ports::{Clock, Kv, KvError, Platform, Random};

/// How long an isolate trusts what it holds before reading the change epoch again (ms).
pub const FRESHNESS_MS: i64 = 1_000;

/// How long after a change KV may still show other locations its old value (ms): Workers KV
/// caches reads at a location for 60 s; a margin on top.
pub const PROPAGATION_MS: i64 = 65_000;

/// The longest an isolate holds a value without reading it again (ms).
pub const MAX_AGE_MS: i64 = 300_000;

/// The KV key of the change epoch: `{writer's clock in ms}:{random hex}`.
pub const EPOCH_KEY: &str = "edge:epoch";

/// How far apart two isolates' clocks may be (ms): a value read this long after a change was
/// announced is known to show it.
const CLOCK_SKEW_MS: i64 = 1_000;

/// Most values one isolate holds; past it, it starts afresh.
const CAPACITY: usize = 20_000;

/// A value held in memory, decoded.
struct Entry {
    read_at: i64,
    value: Rc<dyn Any>,
}

/// What the isolate holds and what it knows of the epoch.
#[derive(Default)]
struct Held {
    /// Whether the isolate served a read yet. Its first second it holds what it reads for
    /// [`FRESHNESS_MS`] without reading the epoch at all: nothing it holds is older, and an
    /// instance that lives for one request (Spin) never pays for the epoch.
    started: bool,
    /// The epoch last read (`Some(None)`: no change was ever announced); `None` before the first
    /// read.
    epoch: Option<Option<Vec<u8>>>,
    /// When the epoch was last read.
    checked_at: i64,
    /// Whether a read of the epoch is under way (concurrent requests of the isolate then read
    /// KV themselves and keep nothing).
    checking: bool,
    /// Values read at or after this instant are held until the next change (or
    /// [`MAX_AGE_MS`]); values read before it only for [`FRESHNESS_MS`].
    settled_after: i64,
    /// Bumped whenever values are dropped: a read that started before does not keep its result.
    generation: u64,
    entries: HashMap<String, Entry>,
}

thread_local! {
    /// Workers run an isolate's requests on one thread; native tests give each test its own.
    static HELD: RefCell<Held> = RefCell::new(Held::default());
}

/// Drops everything this isolate holds and forgets the epoch (tests share threads).
#[cfg(test)]
pub fn clear_isolate() {
    HELD.with(|h| *h.borrow_mut() = Held::default());
}

/// Runs `f` as another isolate would: with memory of its own, over the same stores.
#[cfg(test)]
pub async fn in_other_isolate<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut own = Held::default();
    std::future::poll_fn(move |cx| {
        HELD.with(|h| std::mem::swap(&mut *h.borrow_mut(), &mut own));
        let polled = f.as_mut().poll(cx);
        HELD.with(|h| std::mem::swap(&mut *h.borrow_mut(), &mut own));
        polled
    })
    .await
}

/// Reads `key`, decoded by `decode` (given `None` when the key is absent), from this isolate's
/// memory when it may, else from KV (with `cache_ttl_secs`, see [`Kv::get`]). A failed read of
/// the epoch or the key is an error: the caller decides whether that refuses (markers do).
pub async fn read<P, T, F>(
    p: &P,
    key: &str,
    cache_ttl_secs: Option<u32>,
    decode: F,
) -> Result<Rc<T>, KvError>
where
    P: Platform,
    T: 'static,
    F: FnOnce(Option<Vec<u8>>) -> T,
{
    let now = p.clock().now_ms();
    let trusted = revalidate(p, now).await?;
    if trusted {
        if let Some(value) = lookup::<T>(key, now) {
            return Ok(value);
        }
    }
    let generation = HELD.with(|h| h.borrow().generation);
    if trusted {
        if let Some((read_at, raw)) = take_prefetched(key, now) {
            let value = Rc::new(decode(raw));
            keep(key, read_at, generation, Rc::clone(&value) as Rc<dyn Any>);
            return Ok(value);
        }
    }
    let value = Rc::new(decode(p.kv().get(key, cache_ttl_secs).await?));
    if trusted {
        keep(key, now, generation, Rc::clone(&value) as Rc<dyn Any>);
    }
    Ok(value)
}

/// A value [`prefetch`] read and no [`read`] has decoded yet.
struct Prefetched(Option<Vec<u8>>);

/// Reads those of `keys` (each with its `cache_ttl_secs`, as [`read`]) this isolate does not
/// hold, in one [`Kv::get_many`] call, and holds them undecoded for the [`read`]s that follow:
/// a value is then decoded by its first read and held like any other. `more` names further keys
/// to read along; it is called only when something of `keys` is missing, so a warm isolate
/// (nothing missing) pays for none of its work. Held as if each key were read now, under the
/// same bounds as every read. A failed read is not reported here: the reads that follow read
/// again and decide.
pub async fn prefetch<P, F>(p: &P, keys: &[(&str, Option<u32>)], more: F)
where
    P: Platform,
    F: FnOnce() -> Vec<(String, Option<u32>)>,
{
    let now = p.clock().now_ms();
    if !matches!(revalidate(p, now).await, Ok(true)) {
        return;
    }
    if keys.iter().all(|(key, _)| held(key, now)) {
        return;
    }
    let more = more();
    let wanted: Vec<(&str, Option<u32>)> = keys
        .iter()
        .copied()
        .chain(more.iter().map(|(key, ttl)| (key.as_str(), *ttl)))
        .filter(|(key, _)| !held(key, now))
        .collect();
    if wanted.len() < 2 {
        // One key is read as well by its own read.
        return;
    }
    let generation = HELD.with(|h| h.borrow().generation);
    let Ok(values) = p.kv().get_many(&wanted).await else {
        return;
    };
    for ((key, _), value) in wanted.iter().zip(values) {
        keep(
            key,
            now,
            generation,
            Rc::new(Prefetched(value)) as Rc<dyn Any>,
        );
    }
}

/// Whether the isolate holds a value of `key` (decoded or not) it may serve at `now`.
fn held(key: &str, now: i64) -> bool {
    HELD.with(|h| {
        let h = h.borrow();
        h.entries
            .get(key)
            .is_some_and(|entry| servable(&h, entry, now))
    })
}

/// The undecoded value [`prefetch`] holds for `key`, if it may be served at `now`, with when it
/// was read; taken out of memory (the caller holds it decoded).
fn take_prefetched(key: &str, now: i64) -> Option<(i64, Option<Vec<u8>>)> {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        let entry = h.entries.get(key)?;
        if !servable(&h, entry, now) || !entry.value.is::<Prefetched>() {
            return None;
        }
        let entry = h.entries.remove(key)?;
        let read_at = entry.read_at;
        let raw = Rc::downcast::<Prefetched>(entry.value).ok()?;
        let raw = Rc::try_unwrap(raw).map_or_else(|shared| shared.0.clone(), |own| own.0);
        Some((read_at, raw))
    })
}

/// Holds `value` as the decoded value of `key`, read now from the truth (D1) by the caller: a
/// value KV lacked and the caller rebuilt, so the next read need not rebuild it again.
pub fn remember<P: Platform, T: 'static>(p: &P, key: &str, value: Rc<T>) {
    let now = p.clock().now_ms();
    let generation = HELD.with(|h| h.borrow().generation);
    keep(key, now, generation, value as Rc<dyn Any>);
}

/// Writes `key` to KV and announces the change: every isolate serves the new value within the
/// bounds of this module. An error means the change may not be seen: the caller reports it as
/// not yet at the edge, and repeating the operation repeats the write and the announcement.
pub async fn put<P: Platform>(
    p: &P,
    key: &str,
    value: &[u8],
    ttl_secs: Option<u32>,
) -> Result<(), KvError> {
    forget(key);
    let written = p.kv().put(key, value, ttl_secs).await;
    forget(key);
    written?;
    announce(p).await
}

/// Deletes `key` from KV and announces the change, as [`put`] does.
pub async fn delete<P: Platform>(p: &P, key: &str) -> Result<(), KvError> {
    forget(key);
    let deleted = p.kv().delete(key).await;
    forget(key);
    deleted?;
    announce(p).await
}

/// Writes `key` to KV without announcing it: for a value rebuilt from the truth that no isolate
/// can hold differently (a cache fill), never for a change.
pub async fn fill<P: Platform>(
    p: &P,
    key: &str,
    value: &[u8],
    ttl_secs: Option<u32>,
) -> Result<(), KvError> {
    forget(key);
    p.kv().put(key, value, ttl_secs).await
}

/// Drops this isolate's copy of `key`.
pub fn forget(key: &str) {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        h.entries.remove(key);
        h.generation = h.generation.wrapping_add(1);
    });
}

/// Writes a new change epoch. This isolate keeps the epoch it last read, so its next check
/// drops what it holds too (a change another isolate announced just before is not missed).
///
/// Workers KV takes one write a second per key, so when changes come faster, a write of the
/// epoch is refused because another isolate announced a change within the second. That
/// announcement covers this change too, within one more second: every isolate that sees it
/// drops what it read before it, and holds what it reads in the next 65 s for a second only, so
/// a value read before this change is read again at most a second after the winner's
/// announcement, which is at most a second before this change was written. So a refused write
/// with an epoch under a second old is success (the bound is then 2 s); anything else is
/// reported.
async fn announce<P: Platform>(p: &P) -> Result<(), KvError> {
    let mut nonce = [0u8; 8];
    p.random().fill(&mut nonce);
    let now = p.clock().now_ms();
    let value = format!("{now}:{}", crate::crypto::hex(&nonce));
    let refused = match p.kv().put(EPOCH_KEY, value.as_bytes(), None).await {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let latest = p.kv().get(EPOCH_KEY, None).await;
    let now = p.clock().now_ms();
    match latest {
        Ok(Some(v))
            if written_at(&v).is_some_and(|at| (0..=FRESHNESS_MS).contains(&(now - at))) =>
        {
            Ok(())
        }
        _ => Err(refused),
    }
}

/// Reads the epoch if it was last read [`FRESHNESS_MS`] ago or more, dropping everything held
/// when it moved. Returns whether the isolate may serve from and keep in memory now (false while
/// another request of the isolate is reading the epoch).
async fn revalidate<P: Platform>(p: &P, now: i64) -> Result<bool, KvError> {
    let due = HELD.with(|h| {
        let mut h = h.borrow_mut();
        if !h.started {
            h.started = true;
            h.checked_at = now;
            h.settled_after = i64::MAX;
        }
        if h.checking {
            return None;
        }
        Some(now < h.checked_at || now - h.checked_at >= FRESHNESS_MS)
    });
    match due {
        None => return Ok(false),
        Some(false) => return Ok(true),
        Some(true) => {}
    }
    let guard = Checking::start();
    let read = p.kv().get(EPOCH_KEY, None).await;
    drop(guard);
    let epoch = read?;
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if h.epoch.as_ref() != Some(&epoch) {
            // The latest change: values read after it (by a margin for the clocks of two
            // isolates) already show it, and it shows every earlier change too.
            let changed_at = match &epoch {
                None => Some(i64::MIN),
                Some(v) => written_at(v),
            };
            h.settled_after = changed_at.map_or(i64::MAX, |at| at.saturating_add(PROPAGATION_MS));
            h.entries.retain(|_, e| {
                changed_at.is_some_and(|at| e.read_at > at.saturating_add(CLOCK_SKEW_MS))
            });
            h.generation = h.generation.wrapping_add(1);
            h.epoch = Some(epoch);
        }
        h.checked_at = now;
    });
    Ok(true)
}

/// The writer's clock in an epoch value.
fn written_at(epoch: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(epoch).ok()?;
    text.split_once(':')?.0.parse().ok()
}

/// Marks a read of the epoch under way, and unmarks it however the read ends (even dropped).
struct Checking;

impl Checking {
    fn start() -> Self {
        HELD.with(|h| h.borrow_mut().checking = true);
        Checking
    }
}

impl Drop for Checking {
    fn drop(&mut self) {
        HELD.with(|h| h.borrow_mut().checking = false);
    }
}

/// The held value of `key` if it may still be served at `now`.
fn lookup<T: 'static>(key: &str, now: i64) -> Option<Rc<T>> {
    HELD.with(|h| {
        let h = h.borrow();
        let entry = h.entries.get(key)?;
        if !servable(&h, entry, now) {
            return None;
        }
        Rc::clone(&entry.value).downcast::<T>().ok()
    })
}

/// Whether `entry` may still be served at `now`.
fn servable(h: &Held, entry: &Entry, now: i64) -> bool {
    let Some(age) = now.checked_sub(entry.read_at) else {
        return false;
    };
    (0..FRESHNESS_MS).contains(&age)
        || (entry.read_at >= h.settled_after && (0..MAX_AGE_MS).contains(&age))
}

/// Holds a value read at `read_at`, unless values were dropped since the read started.
fn keep(key: &str, read_at: i64, generation: u64, value: Rc<dyn Any>) {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if h.generation != generation {
            return;
        }
        if h.entries.len() >= CAPACITY && !h.entries.contains_key(key) {
            h.entries.clear();
        }
        h.entries.insert(key.to_owned(), Entry { read_at, value });
    });
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use futures_executor::block_on;

    use super::*;
    use crate::testing::{FaultyPlatform, TestPlatform};

    /// Reads `key` as a plain string through the cache, counting decodes.
    async fn get(p: &FaultyPlatform, key: &str, decodes: &Cell<u32>) -> Option<String> {
        let v = read(p, key, None, |v| {
            decodes.set(decodes.get() + 1);
            v.map(|b| String::from_utf8_lossy(&b).into_owned())
        })
        .await
        .unwrap();
        (*v).clone()
    }

    #[test]
    fn a_held_value_is_served_without_storage_until_the_epoch_is_due() {
        block_on(async {
            let p = FaultyPlatform::over(TestPlatform::new().await);
            clear_isolate();
            let decodes = Cell::new(0);
            p.inner.kv.put("m", b"x", None).await.unwrap();
            assert_eq!(get(&p, "m", &decodes).await.as_deref(), Some("x"));
            // The key only: a new isolate holds what it reads for a second without the epoch.
            assert_eq!(p.kv.reads.replace(0), 1);
            for _ in 0..5 {
                p.inner.clock.advance(100);
                assert_eq!(get(&p, "m", &decodes).await.as_deref(), Some("x"));
            }
            assert_eq!((p.kv.reads.get(), decodes.get()), (0, 1));
            // Due: the first read of the epoch (no change was ever announced): the value stays
            // held, and from then on the epoch is read once a second.
            p.inner.clock.advance(600);
            assert_eq!(get(&p, "m", &decodes).await.as_deref(), Some("x"));
            assert_eq!((p.kv.reads.replace(0), decodes.get()), (1, 1));
            for _ in 0..3 {
                p.inner.clock.advance(FRESHNESS_MS);
                assert_eq!(get(&p, "m", &decodes).await.as_deref(), Some("x"));
            }
            assert_eq!((p.kv.reads.replace(0), decodes.get()), (3, 1));
            // A change announced after the value was read drops it at the next check.
            put(&p, "other", b"y", None).await.unwrap();
            p.inner.clock.advance(FRESHNESS_MS);
            assert_eq!(get(&p, "m", &decodes).await.as_deref(), Some("x"));
            assert_eq!((p.kv.reads.replace(0), decodes.get()), (2, 2));
        });
    }

    #[test]
    fn prefetched_values_cost_one_call_and_keep_the_bounds_of_a_read() {
        block_on(async {
            let p = FaultyPlatform::over(TestPlatform::new().await);
            clear_isolate();
            let decodes = Cell::new(0);
            p.inner.kv.put("a", b"1", None).await.unwrap();
            p.inner.kv.put("b", b"2", None).await.unwrap();
            let more = || vec![("c".to_owned(), Some(60))];
            prefetch(&p, &[("a", None), ("b", None)], more).await;
            assert_eq!((p.kv.reads.replace(0), p.kv.batched_reads.get()), (1, 1));
            assert_eq!(p.kv.read_keys.take(), ["a", "b", "c"]);
            // Each read decodes what the batch brought: no further call, absent included.
            assert_eq!(get(&p, "a", &decodes).await.as_deref(), Some("1"));
            assert_eq!(get(&p, "b", &decodes).await.as_deref(), Some("2"));
            assert_eq!(get(&p, "c", &decodes).await, None);
            assert_eq!((p.kv.reads.get(), decodes.get()), (0, 3));
            // Held like a read: nothing missing, nothing read, and `more` is not even asked.
            prefetch(&p, &[("a", None), ("b", None)], || unreachable!()).await;
            assert_eq!(p.kv.reads.get(), 0);
            // A value prefetched and not yet decoded is dropped by a change like any other.
            clear_isolate();
            prefetch(&p, &[("a", None), ("b", None)], Vec::new).await;
            in_other_isolate(async { put(&p, "a", b"changed", None).await.unwrap() }).await;
            p.inner.clock.advance(FRESHNESS_MS);
            p.kv.reads.set(0);
            assert_eq!(get(&p, "a", &decodes).await.as_deref(), Some("changed"));
            assert_eq!(p.kv.reads.get(), 2, "the epoch, then the key");
            // A failed batch reports nothing: the reads that follow decide.
            clear_isolate();
            p.kv.fail_reads.set(true);
            prefetch(&p, &[("a", None), ("b", None)], Vec::new).await;
            assert!(read(&p, "a", None, |v| v).await.is_err());
        });
    }

    #[test]
    fn the_writing_isolate_sees_its_change_at_once_and_others_within_a_second() {
        block_on(async {
            let p = FaultyPlatform::over(TestPlatform::new().await);
            clear_isolate();
            let decodes = Cell::new(0);
            assert_eq!(get(&p, "marker", &decodes).await, None);
            // Another isolate of the location writes the marker.
            in_other_isolate(async {
                put(&p, "marker", b"revoked", None).await.unwrap();
                let seen = read(&p, "marker", None, |v| v).await.unwrap();
                assert_eq!(seen.as_deref(), Some(&b"revoked"[..]), "the writer at once");
            })
            .await;
            // This isolate still holds "absent" within the second...
            p.inner.clock.advance(FRESHNESS_MS - 1);
            assert_eq!(get(&p, "marker", &decodes).await, None);
            // ...and not a millisecond longer.
            p.inner.clock.advance(1);
            assert_eq!(
                get(&p, "marker", &decodes).await.as_deref(),
                Some("revoked")
            );
        });
    }

    #[test]
    fn values_read_soon_after_a_change_are_read_again_every_second() {
        block_on(async {
            let p = FaultyPlatform::over(TestPlatform::new().await);
            clear_isolate();
            let decodes = Cell::new(0);
            put(&p, "a", b"1", None).await.unwrap();
            assert_eq!(get(&p, "a", &decodes).await.as_deref(), Some("1"));
            // Another location's KV may show the epoch before the value: while the change may
            // still be propagating, a value read is held for a second only.
            p.inner.kv.put("a", b"2", None).await.unwrap();
            p.inner.clock.advance(FRESHNESS_MS);
            assert_eq!(get(&p, "a", &decodes).await.as_deref(), Some("2"));
            // Once settled, held until the next change (or the maximum age).
            p.inner.clock.advance(PROPAGATION_MS);
            assert_eq!(get(&p, "a", &decodes).await.as_deref(), Some("2"));
            p.kv.reads.set(0);
            p.inner.kv.put("a", b"3", None).await.unwrap();
            p.inner.clock.advance(FRESHNESS_MS * 10);
            assert_eq!(get(&p, "a", &decodes).await.as_deref(), Some("2"));
            assert_eq!(p.kv.reads.get(), 1, "the epoch only");
            p.inner.clock.advance(MAX_AGE_MS);
            assert_eq!(get(&p, "a", &decodes).await.as_deref(), Some("3"));
        });
    }

    #[test]
    fn a_failed_epoch_read_is_an_error_and_nothing_is_served_from_memory() {
        block_on(async {
            let p = FaultyPlatform::over(TestPlatform::new().await);
            clear_isolate();
            let decodes = Cell::new(0);
            p.inner.kv.put("k", b"v", None).await.unwrap();
            assert_eq!(get(&p, "k", &decodes).await.as_deref(), Some("v"));
            p.inner.clock.advance(FRESHNESS_MS);
            p.kv.fail_reads.set(true);
            assert!(read(&p, "k", None, |v| v).await.is_err());
        });
    }

    #[test]
    fn a_failed_announcement_is_reported_to_the_writer() {
        block_on(async {
            let p = FaultyPlatform::over(TestPlatform::new().await);
            clear_isolate();
            p.kv.fail.set(true);
            assert!(put(&p, "k", b"v", None).await.is_err());
            assert!(delete(&p, "k").await.is_err());
        });
    }

    #[test]
    fn an_epoch_write_refused_right_after_another_announcement_is_covered_by_it() {
        block_on(async {
            let p = FaultyPlatform::over(TestPlatform::new().await);
            clear_isolate();
            let decodes = Cell::new(0);
            p.inner.kv.put("k", b"old", None).await.unwrap();
            p.inner.clock.advance(PROPAGATION_MS);
            assert_eq!(get(&p, "k", &decodes).await.as_deref(), Some("old"));
            p.inner.clock.advance(FRESHNESS_MS);
            assert_eq!(get(&p, "k", &decodes).await.as_deref(), Some("old"));
            // Another isolate announces a change of its own...
            in_other_isolate(async { put(&p, "other", b"x", None).await.unwrap() }).await;
            // ...and 600 ms later KV refuses this writer's epoch (one write a second per key):
            // its change is still announced, by the other one.
            p.inner.clock.advance(600);
            in_other_isolate(async {
                p.kv.fail_writes_to.replace(Some(EPOCH_KEY.to_owned()));
                put(&p, "k", b"new", None).await.unwrap();
                p.kv.fail_writes_to.replace(None);
            })
            .await;
            // This isolate sees the winner's epoch, drops what it read before, and holds what
            // it reads now for a second only: within 2 s of the winner, it serves the change.
            p.inner.clock.advance(FRESHNESS_MS);
            assert_eq!(get(&p, "k", &decodes).await.as_deref(), Some("new"));
            // With no announcement under a second old, a refused epoch write is an error.
            p.inner.clock.advance(FRESHNESS_MS + 1);
            p.kv.fail_writes_to.replace(Some(EPOCH_KEY.to_owned()));
            assert!(put(&p, "k", b"newer", None).await.is_err());
        });
    }

    #[test]
    fn a_read_that_raced_a_local_write_does_not_keep_the_old_value() {
        block_on(async {
            let p = FaultyPlatform::over(TestPlatform::new().await);
            p.inner.sql.interleave();
            clear_isolate();
            p.inner.kv.put("k", b"old", None).await.unwrap();
            // Warm the epoch, so the next read goes straight to the key.
            let _ = read(&p, "other", None, |v| v).await.unwrap();
            let reader = read(&p, "k", None, |v| v);
            let writer = async {
                put(&p, "k", b"new", None).await.unwrap();
            };
            let (seen, ()) = crate::kernel::join2(reader, writer).await;
            assert!(seen.is_ok());
            let now = read(&p, "k", None, |v| v).await.unwrap();
            assert_eq!(now.as_deref(), Some(&b"new"[..]));
        });
    }
}
