//! Time and waiting as parameters: the token verifier takes the current time from a [`Clock`]
//! (tests fix it; wasm has no `SystemTime`), and the reporter's backoff waits through a
//! [`Sleep`] (a thread natively, a timer promise in a Worker).
//!
//! The Workers implementations ([`crate::WorkerClock`], [`crate::WorkerSleep`]) are in
//! [`crate::workers`] (feature `worker`).

use std::time::Duration;

/// The current time.
pub trait Clock {
    /// Seconds since the Unix epoch.
    fn now_unix_secs(&self) -> u64;

    /// Milliseconds since the Unix epoch, for bounds finer than a second (the introspection
    /// cache's). By default the seconds, times 1,000.
    fn now_unix_millis(&self) -> u64 {
        self.now_unix_secs().saturating_mul(1000)
    }
}

/// A clock stopped at one instant: for tests and for callers that read the time themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_unix_secs(&self) -> u64 {
        self.0
    }
}

/// Waits, without blocking the executor.
#[allow(async_fn_in_trait)] // Not `Send`, like the HTTP seam.
pub trait Sleep {
    /// Resolves after `duration`.
    async fn sleep(&self, duration: Duration);
}

#[cfg(feature = "native")]
pub use native::{NativeSleep, SystemClock};

#[cfg(feature = "native")]
mod native {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use futures_channel::oneshot;

    use super::{Clock, Sleep};

    /// The system's clock.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct SystemClock;

    impl Clock for SystemClock {
        // The one place the system's time is read: the native adapter of the port.
        #[allow(clippy::disallowed_methods)]
        fn now_unix_secs(&self) -> u64 {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        }

        #[allow(clippy::disallowed_methods)]
        fn now_unix_millis(&self) -> u64 {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0)
        }
    }

    /// Waits on a thread of its own and wakes the awaiting task through a oneshot channel.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct NativeSleep;

    impl Sleep for NativeSleep {
        async fn sleep(&self, duration: Duration) {
            if duration.is_zero() {
                return;
            }
            let (tx, rx) = oneshot::channel::<()>();
            let spawned = std::thread::Builder::new()
                .name("edgeplane-sleep".into())
                .spawn(move || {
                    std::thread::sleep(duration);
                    let _ = tx.send(());
                });
            match spawned {
                Ok(_) => {
                    let _ = rx.await;
                }
                // No thread to wait on: block this one rather than retry at once.
                Err(_) => std::thread::sleep(duration),
            }
        }
    }
}
