//! The SHA-256 of a request body, computed on a blocking thread while the body streams in.
//!
//! A body arrives in chunks of up to 1 MiB (hyper's read buffer; ingestd sends 1 MiB writes),
//! and hashing one takes about a millisecond: more than a runtime thread may spend without
//! yielding (STYLE.md, "Async and blocking"). [`BodyHasher`] hands each chunk (a reference
//! count, not a copy) to one blocking task through a bounded channel, so a slow hash holds
//! the body back instead of queueing it in memory. The local backend hashes on its writer
//! thread instead (`local.rs`).

use crate::error::{Result, StoragedError};
use bytes::Bytes;
use lakehouse_api::Sha256Digest;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Chunks queued for the hashing task, at most (with 1 MiB chunks, 4 MiB held).
const HASH_CHUNKS: usize = 4;

/// A SHA-256 computed on a blocking task from the chunks given to [`BodyHasher::update`].
#[derive(Debug)]
pub(super) struct BodyHasher {
    chunks: mpsc::Sender<Bytes>,
    task: JoinHandle<Sha256Digest>,
}

impl BodyHasher {
    /// Starts the hashing task (on tokio's blocking pool).
    pub(super) fn spawn() -> Self {
        let (chunks, mut received) = mpsc::channel::<Bytes>(HASH_CHUNKS);
        let task = tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            while let Some(chunk) = received.blocking_recv() {
                hasher.update(&chunk);
            }
            Sha256Digest::from_bytes(hasher.finalize().into())
        });
        BodyHasher { chunks, task }
    }

    /// Queues `chunk`, waiting while [`HASH_CHUNKS`] are queued already. A task that is gone
    /// (it panicked) is reported by [`BodyHasher::finish`].
    pub(super) async fn update(&self, chunk: Bytes) {
        let _ = self.chunks.send(chunk).await;
    }

    /// The digest of every chunk given, in order.
    ///
    /// # Errors
    /// [`StoragedError::Io`] (`op` `hash`, `path` the object's key) when the hashing task
    /// panicked.
    pub(super) async fn finish(self, key: &str) -> Result<Sha256Digest> {
        drop(self.chunks);
        self.task.await.map_err(|join| StoragedError::Io {
            op: "hash",
            path: PathBuf::from(key),
            source: std::io::Error::other(join),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_digest_is_the_sha256_of_the_chunks_in_order() {
        let hasher = BodyHasher::spawn();
        for chunk in ["hello ", "", "world"] {
            hasher.update(Bytes::from_static(chunk.as_bytes())).await;
        }
        let digest = hasher.finish("k").await.unwrap();
        assert_eq!(digest.as_str(), hex::encode(Sha256::digest(b"hello world")),);
    }
}
