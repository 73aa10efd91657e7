//! [`R2Blobs`]: core's `Blobs` port over the R2 bucket `ARCHIVE`.

use edgeplane_core::ports::{BlobError, BlobPage, Blobs};
use worker::{Bucket, Data, HttpMetadata};

/// R2 returns at most 1000 keys per list call.
const MAX_LIST: u32 = 1000;

/// The `Blobs` port over an R2 bucket binding.
pub struct R2Blobs {
    bucket: Bucket,
}

impl R2Blobs {
    /// Wraps an R2 bucket binding.
    pub fn new(bucket: Bucket) -> Self {
        R2Blobs { bucket }
    }
}

/// R2 operations fail on network errors or R2 outages: the caller may retry.
fn unavailable(e: worker::Error) -> BlobError {
    BlobError::Unavailable(e.to_string())
}

impl Blobs for R2Blobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        self.bucket
            .put(key, Data::Bytes(bytes))
            .http_metadata(HttpMetadata {
                content_type: Some(content_type.to_owned()),
                ..HttpMetadata::default()
            })
            .execute()
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let Some(object) = self.bucket.get(key).execute().await.map_err(unavailable)? else {
            return Ok(None);
        };
        match object.body() {
            Some(body) => body.bytes().await.map(Some).map_err(unavailable),
            // A zero-length object has no body stream.
            None => Ok(Some(Vec::new())),
        }
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<BlobPage, BlobError> {
        let mut list = self
            .bucket
            .list()
            .prefix(prefix)
            .limit(limit.clamp(1, MAX_LIST));
        if let Some(cursor) = cursor {
            list = list.cursor(cursor);
        }
        let objects = list.execute().await.map_err(unavailable)?;
        Ok(BlobPage {
            keys: objects.objects().iter().map(worker::Object::key).collect(),
            cursor: if objects.truncated() {
                objects.cursor()
            } else {
                None
            },
        })
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.bucket.delete(key).await.map_err(unavailable)
    }
}
