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

    /// A local PUT, start to end on one blocking task (docs/contract.md section 10: each
    /// hand-off between the runtime and the blocking pool costs a thread wake-up, a good part
    /// of a small object's latency):
    ///
    /// 1. the body goes to the staging file `staging`, past the page cache when `direct_io`
    ///    ([`DirectWriter`]), hashed on the way, and is fsynced: the bytes are on disk before
    ///    the object gets its name (docs/contract.md section 2, invariant 3);
    /// 2. once the body is complete and its SHA-256 is `expected` (when given), it is linked
    ///    into place at the key `place` names (create-only: a taken key fails; replacing:
    ///    renamed over it), and the staging name is removed;
    /// 3. the object's directory is fsynced, when this process already made that directory
    ///    durable up to the root ([`DurableDirs`]). Otherwise `Placed::durable` is false and
    ///    the caller runs [`sync_local_object`], which flushes every level.
    ///
    /// The staging file stays (for the caller's guard to delete) on every path that does not
    /// link it into place.
    ///
    /// # Errors
    /// [`StoragedError::BodyRead`] when the body breaks off, [`StoragedError::DigestMismatch`],
    /// [`StoragedError::AlreadyExists`] for a taken create-only key,
    /// [`StoragedError::KeyPathConflict`] when the key collides with a file or directory
    /// (`a` and `a/b`), [`StoragedError::Io`] naming the step that failed; a
    /// [`Place::ByDigest`] naming error as its function returns it.
    pub(super) async fn put<B: Body>(
        &self,
        staging: &Path,
        body: B,
        expected: Option<Sha256Digest>,
        place: Place,
    ) -> Result<Placed> {
        let staged = self.root.join(staging.as_ref());
        // `None` after the last chunk: the body is complete, so the writer may place it.
        let (chunks, received) = tokio::sync::mpsc::channel::<Option<Bytes>>(STAGE_CHUNKS);
        let writer = tokio::task::spawn_blocking({
            let (root, direct, known) =
                (self.root.clone(), self.direct_io, self.durable_dirs.clone());
            move || {
                let Some(sha256) = write_staged(&staged, direct, received)? else {
                    return Ok(None);
                };
                place_staged(&root, &staged, sha256, expected.as_ref(), place, &known).map(Some)
            }
        });
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        let mut body_error = None;
        while let Some(frame) = body.next().await {
            match frame {
                Ok(bytes) => {
                    size += bytes.len() as u64;
                    if chunks.send(Some(bytes)).await.is_err() {
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
        if body_error.is_none() {
            // A writer that failed already has no receiver; joining it says why.
            let _ = chunks.send(None).await;
        }
        drop(chunks);
        let placed = writer.await.map_err(|join| StoragedError::Io {
            op: "write",
            path: PathBuf::from(staging.as_ref()),
            source: std::io::Error::other(join),
        })?;
        match (placed, body_error) {
            (Ok(Some(mut placed)), None) => {
                placed.size = size;
                Ok(placed)
            }
            (Ok(None), Some(e)) | (Err(_), Some(e)) => Err(StoragedError::BodyRead {
                source: Box::new(e),
            }),
            (Err(e), None) => Err(e),
            // Complete without an end mark, or placed after an error: neither can happen (the
            // end mark is sent only when the body ended cleanly).
            (Ok(None), None) | (Ok(Some(_)), Some(_)) => Err(StoragedError::Io {
                op: "write",
                path: PathBuf::from(staging.as_ref()),
                source: std::io::Error::other("the body ended without its end mark"),
            }),
        }
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

/// Where [`LocalFs::put`] moves a staged body once it is complete and verified.
pub(super) enum Place {
    /// This key; a taken key is [`StoragedError::AlreadyExists`].
    CreateOnly(ObjectKey),
    /// This key, replacing what it holds.
    Overwrite(ObjectKey),
    /// The key this function makes of the body's SHA-256 ([`super::Store::put_content_addressed`]);
    /// a taken key holds the same bytes already.
    ByDigest(NameByDigest),
}

/// Makes a content-addressed key of a body's SHA-256 ([`Place::ByDigest`]).
pub(super) type NameByDigest = Box<dyn FnOnce(&Sha256Digest) -> Result<ObjectKey> + Send>;

/// What [`LocalFs::put`] stored.
pub(super) struct Placed {
    /// The object's key.
    pub(super) key: ObjectKey,
    /// The body's length in bytes.
    pub(super) size: u64,
    /// The body's SHA-256.
    pub(super) sha256: Sha256Digest,
    /// False when a [`Place::ByDigest`] key held the bytes already (the staging file is left
    /// for the caller to delete).
    pub(super) created: bool,
    /// True when the object and its directory entry are durable; false when the caller must
    /// still run [`sync_local_object`] (a directory not yet known durable, or a key that held
    /// the bytes already).
    pub(super) durable: bool,
}

/// Objects of this many bytes or more leave the page cache once durable (a buffered write
/// that is not read back soon: a metadata JSON, a manifest list of many manifests): the
/// cache stays the size of what is read, not of everything written, and the next write
/// reuses the pages these free (docs/decisions.md, "Written objects leave the page cache").
/// Smaller ones, such as a Parquet object whose footer catalogd reads next, stay.
const CACHED_OBJECT_BYTES: u64 = 256 * 1024;

/// Step 1 of [`LocalFs::put`]: writes the chunks to `path` until the end mark, hashing
/// them, and fsyncs the file. `Ok(None)` when the chunks stop without the end mark (the
/// body broke off: nothing may be placed).
fn write_staged(
    path: &std::path::Path,
    direct: bool,
    mut received: tokio::sync::mpsc::Receiver<Option<Bytes>>,
) -> Result<Option<Sha256Digest>> {
    let io = |op, source| StoragedError::Io {
        op,
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create directory", e))?;
    }
    let mut file = DirectWriter::open(path, true, direct).map_err(|e| io("write", e))?;
    let mut hasher = Sha256::new();
    let mut complete = false;
    let mut bytes = 0u64;
    while let Some(chunk) = next_chunk(&mut received, &mut file).map_err(|e| io("write", e))? {
        let Some(chunk) = chunk else {
            complete = true;
            break;
        };
        hasher.update(&chunk);
        bytes += chunk.len() as u64;
        file.write(&chunk).map_err(|e| io("write", e))?;
    }
    if !complete {
        return Ok(None);
    }
    let file = file.finish().map_err(|e| io("write", e))?;
    let started = std::time::Instant::now();
    let synced = file.sync_all();
    crate::metrics::fsync(started.elapsed());
    synced.map_err(|e| io("fsync", e))?;
    if bytes >= CACHED_OBJECT_BYTES {
        // Durable now: its pages are clean, and dropping them costs nothing but a later
        // read from disk.
        if let Err(error) = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed) {
            tracing::debug!(%error, path = %path.display(), "its pages stay cached");
        }
    }
    Ok(Some(Sha256Digest::from_bytes(hasher.finalize().into())))
}

/// How long a body may pause before its file gives its write buffer back
/// ([`DirectWriter::park`]): a streamed upload sends a chunk every few milliseconds, while a
/// file of an upload cut in several waits, complete, until all are committed.
const PARK_AFTER: std::time::Duration = std::time::Duration::from_millis(50);

/// The next chunk of `received` (`None` once the sender is gone), parking `file` when none
/// comes within [`PARK_AFTER`].
///
/// # Errors
/// The write error of parking.
fn next_chunk(
    received: &mut tokio::sync::mpsc::Receiver<Option<Bytes>>,
    file: &mut DirectWriter,
) -> std::io::Result<Option<Option<Bytes>>> {
    if let Ok(chunk) = received.try_recv() {
        return Ok(Some(chunk));
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Ok(received.blocking_recv());
    };
    match runtime.block_on(tokio::time::timeout(PARK_AFTER, received.recv())) {
        Ok(chunk) => Ok(chunk),
        Err(_) => {
            file.park()?;
            Ok(received.blocking_recv())
        }
    }
}

/// Steps 2 and 3 of [`LocalFs::put`]: the staged file at `staged`, of digest `sha256`, moved
/// into place under `root`.
fn place_staged(
    root: &std::path::Path,
    staged: &std::path::Path,
    sha256: Sha256Digest,
    expected: Option<&Sha256Digest>,
    place: Place,
    known: &DurableDirs,
) -> Result<Placed> {
    if let Some(expected) = expected.filter(|e| **e != sha256) {
        return Err(StoragedError::DigestMismatch {
            expected: expected.to_string(),
            actual: sha256.to_string(),
        });
    }
    let (key, replace, by_digest) = match place {
        Place::CreateOnly(key) => (key, false, false),
        Place::Overwrite(key) => (key, true, false),
        Place::ByDigest(name) => (name(&sha256)?, false, true),
    };
    let target = root.join(key.as_str());
    let moved = move_into_place(staged, &target, replace);
    let taken = |e: &std::io::Error| {
        e.kind() == std::io::ErrorKind::AlreadyExists && !replace && !target.is_dir()
    };
    let created = match moved {
        Ok(()) => true,
        // The key holds the same bytes: they are named by their digest.
        Err(e) if taken(&e) && by_digest => false,
        Err(e) if taken(&e) => {
            return Err(StoragedError::AlreadyExists {
                key: key.to_string(),
            });
        }
        Err(_) if path_conflict(root, &key) => {
            return Err(StoragedError::KeyPathConflict {
                key: key.to_string(),
            });
        }
        Err(source) => {
            return Err(StoragedError::Io {
                op: "move into place",
                path: target,
                source,
            });
        }
    };
    let dir = target.parent().unwrap_or(root);
    let durable = created && known.contains(dir) && {
        let started = std::time::Instant::now();
        let synced = std::fs::File::open(dir).and_then(|d| d.sync_all());
        crate::metrics::fsync(started.elapsed());
        synced.map_err(|source| fsync_error(dir, source))?;
        true
    };
    Ok(Placed {
        key,
        size: 0,
        sha256,
        created,
        durable,
    })
}

/// Links (create-only) or renames (`replace`) `staged` to `target`, making `target`'s
/// directories when they are missing; a link's staging name is removed after it.
fn move_into_place(
    staged: &std::path::Path,
    target: &std::path::Path,
    replace: bool,
) -> std::io::Result<()> {
    let attempt = || {
        if replace {
            std::fs::rename(staged, target)
        } else {
            std::fs::hard_link(staged, target)
        }
    };
    match attempt() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir)?;
            }
            attempt()?;
        }
        other => other?,
    }
    if !replace && let Err(e) = std::fs::remove_file(staged) {
        // Both names hold the same complete file; the staging one is debris, removed at
        // the next start.
        tracing::warn!(path = %staged.display(), error = %e, "staging name not removed");
    }
    Ok(())
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
pub(super) fn path_conflict(root: &std::path::Path, key: &ObjectKey) -> bool {
    let path = root.join(key.as_str());
    if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
        return true;
    }
    let mut dir = path.parent();
    while let Some(current) = dir {
        if current == root {
            return false;
        }
        if std::fs::metadata(current).is_ok_and(|m| !m.is_dir()) {
            return true;
        }
        dir = current.parent();
    }
    false
}
