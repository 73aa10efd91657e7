//! [`KvStore`]: core's `Kv` port over the Workers KV namespace `FLAGS`.

use edgeplane_core::ports::{Kv, KvError};

/// Workers KV refuses `cacheTtl` and `expirationTtl` below 60 seconds.
const MIN_TTL_SECS: u32 = 60;

/// The `Kv` port over a Workers KV namespace.
pub struct KvStore {
    ns: worker::KvStore,
}

impl KvStore {
    /// Wraps a KV namespace binding.
    pub fn new(ns: worker::KvStore) -> Self {
        KvStore { ns }
    }
}

/// KV failures are network or quota failures of a cache: the caller may retry or fall back.
fn unavailable(e: worker::KvError) -> KvError {
    KvError::Unavailable(e.to_string())
}

impl Kv for KvStore {
    async fn get(
        &self,
        key: &str,
        cache_ttl_secs: Option<u32>,
    ) -> Result<Option<Vec<u8>>, KvError> {
        let mut get = self.ns.get(key);
        if let Some(ttl) = cache_ttl_secs {
            get = get.cache_ttl(u64::from(ttl.max(MIN_TTL_SECS)));
        }
        get.bytes().await.map_err(unavailable)
    }

    async fn put(&self, key: &str, value: &[u8], ttl_secs: Option<u32>) -> Result<(), KvError> {
        let mut put = self
            .ns
            .put_bytes(key, value)
            .map_err(|e| KvError::Other(e.to_string()))?;
        if let Some(ttl) = ttl_secs {
            put = put.expiration_ttl(u64::from(ttl.max(MIN_TTL_SECS)));
        }
        put.execute().await.map_err(unavailable)
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.ns.delete(key).await.map_err(unavailable)
    }

    /// Concurrently: a cold isolate waits for one KV round trip, not one per key.
    async fn get_many(
        &self,
        keys: &[(&str, Option<u32>)],
    ) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        futures_util::future::try_join_all(keys.iter().map(|&(key, ttl)| self.get(key, ttl))).await
    }
}
