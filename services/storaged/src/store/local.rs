//! The `local` backend: a directory on the local file system through object_store's
//! `LocalFileSystem`, with what object_store does not do for us: staging past the page cache,
//! the fsyncs before a 201 (docs/contract.md section 2, invariant 3), file-name limits, and telling a
//! key/path collision from other failures.

use super::{Body, LOCAL_MAX_SEGMENT_BYTES, STAGE_CHUNKS, STAGING_PREFIX};
use crate::error::{Result, StoragedError};
use bytes::Bytes;
use futures::StreamExt;
use lakehouse_api::{ObjectKey, Sha256Digest};
use lakehouse_server::direct::DirectWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::PathBuf;

/// The local backend's own state.
#[derive(Debug, Clone)]
pub(super) struct LocalFs {
    /// Canonical root directory: where [`sync_local_object`] finds the files to fsync.
    pub(super) root: PathBuf,
    /// Staged bodies are written past the page cache where the file system allows it
    /// ([`DirectWriter`]).
    pub(super) direct_io: bool,
    /// Directories this process made durable up to the root ([`sync_local_object`]).
    pub(super) durable_dirs: DurableDirs,
}

impl LocalFs {
    /// Creates `root` when missing and opens it (direct I/O on).
    ///
    /// # Errors
    /// [`StoragedError::Io`] when `root` cannot be created or resolved,
    /// [`StoragedError::Backend`] when object_store refuses it.
    pub(super) async fn open(root: &std::path::Path) -> Result<(LocalFileSystem, LocalFs)> {
        let io = |op, source| StoragedError::Io {
            op,
            path: root.to_owned(),
            source,
        };
        tokio::fs::create_dir_all(root)
            .await
            .map_err(|e| io("create directory", e))?;
        let canonical = tokio::fs::canonicalize(root)
            .await
            .map_err(|e| io("resolve directory", e))?;
        let fs = LocalFileSystem::new_with_prefix(&canonical).map_err(|source| {
            StoragedError::Backend {
                op: "open",
                key: canonical.display().to_string(),
                source,
            }
        })?;
        Ok((
            fs,
            LocalFs {
                root: canonical,
                direct_io: true,
                durable_dirs: DurableDirs::default(),
            },
        ))
    }

    /// Removes the whole staging directory (crash debris), including the `#<n>` part files
    /// object_store's listing hides.
    pub(super) async fn remove_staging_debris(&self) -> Result<()> {
        let dir = self.root.join(STAGING_PREFIX);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => tracing::info!(dir = %dir.display(), "removed staging debris"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoragedError::Io {
                    op: "remove staging directory",
                    path: dir,
                    source,
                });
            }
        }
        Ok(())
    }

    /// Staging on the local backend: the body goes to the staging file from a
    /// blocking writer thread, past the page cache when `direct_io` ([`DirectWriter`]), so
    /// the fsync before the 201 has little left to flush and no page of the cache is taken
    /// (docs/performance.md). Hashed on the way, on that thread.
    pub(super) async fn stage<B: Body>(
        &self,
        staging: &Path,
        body: B,
    ) -> Result<(u64, Sha256Digest)> {
        let file_path = self.root.join(staging.as_ref());
        let io = |op, source| StoragedError::Io {
            op,
            path: PathBuf::from(staging.as_ref()),
            source,
        };
        let (chunks, mut received) = tokio::sync::mpsc::channel::<Bytes>(STAGE_CHUNKS);
        let direct = self.direct_io;
        // One blocking task does all of the file's work: its directory, the writes, the hash
        // (a chunk of up to 1 MiB takes about a millisecond, past the runtime's budget,
        // STYLE.md "Async and blocking") and the fsync. Each hand-off between the runtime
        // and the blocking pool costs a thread wake-up, a good part of a small object's
        // latency.
        let writer = tokio::task::spawn_blocking(
            move || -> std::result::Result<Sha256Digest, (&'static str, std::io::Error)> {
                if let Some(dir) = file_path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| ("create directory", e))?;
                }
                let mut file =
                    DirectWriter::open(&file_path, true, direct).map_err(|e| ("write", e))?;
                let mut hasher = Sha256::new();
                while let Some(chunk) = received.blocking_recv() {
                    hasher.update(&chunk);
                    file.write(&chunk).map_err(|e| ("write", e))?;
                }
                let file = file.finish().map_err(|e| ("write", e))?;
                // The bytes are on disk before the object gets its name (docs/contract.md
                // section 2, invariant 3): a crash after the rename cannot leave a key naming
                // unflushed data.
                let started = std::time::Instant::now();
                let synced = file.sync_all();
                crate::metrics::fsync(started.elapsed());
                synced.map_err(|e| ("fsync", e))?;
                Ok(Sha256Digest::from_bytes(hasher.finalize().into()))
            },
        );
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        let mut body_error = None;
        while let Some(frame) = body.next().await {
            match frame {
                Ok(bytes) => {
                    size += bytes.len() as u64;
                    if chunks.send(bytes).await.is_err() {
                        // The writer failed: joining it says why.
                        break;
                    }
                }
                Err(e) => {
                    body_error = Some(e);
                    break;
                }
            }
        }
        drop(chunks);
        let written = writer
            .await
            .map_err(|join| io("write", std::io::Error::other(join)))?;
        if let Some(e) = body_error {
            return Err(StoragedError::BodyRead {
                source: Box::new(e),
            });
        }
        let sha256 = written.map_err(|(op, e)| io(op, e))?;
        Ok((size, sha256))
    }

    /// Refuses keys a file system cannot hold although the key grammar allows them: a
    /// segment is a file name, at most [`LOCAL_MAX_SEGMENT_BYTES`] bytes.
    pub(super) fn check_key(key: &ObjectKey) -> Result<()> {
        if key
            .as_str()
            .split('/')
            .any(|segment| segment.len() > LOCAL_MAX_SEGMENT_BYTES)
        {
            return Err(StoragedError::InvalidKey {
                key: key.to_string(),
                reason: format!(
                    "segment longer than {LOCAL_MAX_SEGMENT_BYTES} bytes (a file name on the \
                     local backend)"
                ),
            });
        }
        Ok(())
    }

    /// The root must still be a directory.
    pub(super) async fn ready(&self) -> Result<()> {
        match tokio::fs::metadata(&self.root).await {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(StoragedError::NotReady {
                source: "storage root is not a directory".into(),
            }),
            Err(e) => Err(StoragedError::NotReady {
                source: Box::new(e),
            }),
        }
    }
}

/// fsyncs that [`sync_local_object`] runs at once, at most (on tokio's blocking pool). A key
/// of the usual depth (`datasets/<name>/<fp_hex>/<sha256>.parquet` under the root: five
/// paths) has all of them at once; a deeper key waits for a free one.
const SYNCS_AT_ONCE: usize = 8;

/// How many directories [`DurableDirs`] remembers before it starts over (each then costs
/// one more walk up to the root).
const MAX_DURABLE_DIRS: usize = 65_536;

/// The directories whose entry, and every entry above it up to the root, this process has
/// fsynced since it created or first used them: a new object in one of them needs only its
/// own fsync and its directory's, not one per level of its key. Shared by the clones of a
/// store. Objects' directories are never removed while storaged runs (only the staging
/// directory, at start), so an entry never goes stale.
#[derive(Debug, Clone, Default)]
pub struct DurableDirs(std::sync::Arc<std::sync::Mutex<HashSet<PathBuf>>>);

impl DurableDirs {
    pub(super) fn contains(&self, dir: &std::path::Path) -> bool {
        let dirs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        dirs.contains(dir)
    }

    fn insert_all(&self, new: impl IntoIterator<Item = PathBuf>) {
        let mut dirs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if dirs.len() >= MAX_DURABLE_DIRS {
            dirs.clear();
        }
        dirs.extend(new);
    }
}

/// Makes the object `root/<key>` durable before its 201 (docs/contract.md section 2, invariant 3).
///
/// object_store's local backend (without its `fsync` option) renames a staged file into place
/// without flushing anything. Staging already flushed the file's bytes before the rename, so
/// the name never points at unflushed data; this flushes the file again (its metadata, and
/// the data of a key an earlier write moved into place and then failed before flushing)
/// and its directory, so the new directory entry is on disk. Unless `known` holds that
/// directory (this process already made its entry durable up to the root), every directory
/// above it up to and including `root` is flushed too, so directories created for the key
/// are on disk, and `known` then learns them.
///
/// These fsyncs do not depend on one another, so up to [`SYNCS_AT_ONCE`] run at the same
/// time, and all have returned before this does: on a disk where each fsync costs a cache
/// flush (1 to 7 ms each on the benchmark VM) they overlap instead of adding up.
///
/// Returns how many paths it flushed: the file and its directory (2) when `known` held
/// that directory, else the file and every directory up to and including `root`.
///
/// # Errors
/// [`StoragedError::Io`] naming the path that could not be opened or synced (the one
/// nearest the file, when several could not).
pub async fn sync_local_object(
    root: &std::path::Path,
    key: &ObjectKey,
    known: &DurableDirs,
) -> Result<usize> {
    let path = root.join(key.as_str());
    let chain_known = path.parent().is_some_and(|parent| known.contains(parent));
    let mut paths = vec![path.clone()];
    let mut dir = path.parent();
    while let Some(current) = dir {
        paths.push(current.to_owned());
        if current == root || chain_known {
            break;
        }
        dir = current.parent();
    }
    let syncs = paths.iter().cloned().map(|path| async move {
        let synced = tokio::task::spawn_blocking({
            let path = path.clone();
            move || {
                std::fs::File::open(&path).and_then(|file| {
                    let started = std::time::Instant::now();
                    let synced = file.sync_all();
                    crate::metrics::fsync(started.elapsed());
                    synced
                })
            }
        })
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join)));
        synced.map_err(|source| fsync_error(path, source))
    });
    // `buffered` answers in path order, so the first error is the one nearest the file.
    let results: Vec<Result<()>> = futures::stream::iter(syncs)
        .buffered(SYNCS_AT_ONCE)
        .collect()
        .await;
    results.into_iter().collect::<Result<()>>()?;
    let flushed = paths.len();
    if !chain_known {
        known.insert_all(paths.into_iter().skip(1));
    }
    Ok(flushed)
}

/// The [`StoragedError::Io`] of a failed fsync of `path`.
fn fsync_error(path: impl Into<PathBuf>, source: std::io::Error) -> StoragedError {
    StoragedError::Io {
        op: "fsync",
        path: path.into(),
        source,
    }
}

/// True when `root/<key>` cannot be a file because it is a directory or because one of its
/// ancestors below `root` is a file (`a` and `a/b` on the local backend).
pub(super) async fn local_path_conflict(root: &std::path::Path, key: &ObjectKey) -> bool {
    let path = root.join(key.as_str());
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
        return true;
    }
    let mut dir = path.parent();
    while let Some(current) = dir {
        if current == root {
            return false;
        }
        if tokio::fs::metadata(current)
            .await
            .is_ok_and(|m| !m.is_dir())
        {
            return true;
        }
        dir = current.parent();
    }
    false
}
