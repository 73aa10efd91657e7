//! Identifiers: random UUIDs from the Random port (never a thread RNG).

use crate::ports::{Clock, Random};

/// A random (v4) UUID, lowercase hyphenated.
pub fn new_id<R: Random + ?Sized>(random: &R) -> String {
    let mut bytes = [0u8; 16];
    random.fill(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// A time-ordered (v7) UUID: ids created later sort later, which keeps cursor pagination and
/// B-tree inserts cheap.
pub fn new_ordered_id<C: Clock + ?Sized, R: Random + ?Sized>(clock: &C, random: &R) -> String {
    let mut bytes = [0u8; 10];
    random.fill(&mut bytes);
    let ms = u64::try_from(clock.now_ms()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(ms, &bytes)
        .into_uuid()
        .to_string()
}

/// True if `s` is a UUID in canonical lowercase hyphenated form.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok_and(|u| u.to_string() == s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Counter(Cell<u8>);
    impl Random for Counter {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                *b = self.0.get();
                self.0.set(self.0.get().wrapping_add(1));
            }
        }
    }
    struct At(i64);
    impl Clock for At {
        fn now_ms(&self) -> i64 {
            self.0
        }
    }

    #[test]
    fn ids_are_uuids_and_ordered_ids_sort_by_time() {
        let r = Counter(Cell::new(0));
        let a = new_id(&r);
        assert!(is_uuid(&a), "{a}");
        assert_eq!(&a[14..15], "4");
        let early = new_ordered_id(&At(1_700_000_000_000), &r);
        let late = new_ordered_id(&At(1_700_000_000_001), &r);
        assert!(is_uuid(&early) && early < late);
        assert!(!is_uuid("not-a-uuid"));
        assert!(!is_uuid(&a.to_uppercase()));
    }
}
