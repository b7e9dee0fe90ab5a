//! The domain layer of storaged: object keys, create-only and verified writes, ranged reads
//! and ordered listing over an `Arc<dyn ObjectStore>` (docs/contract.md sections 2 and 6).
//!
//! Not HTTP: handlers parse the request (the `Range` header, the `ETag` form live in
//! `routes`), call one method here and map the error.
//!
//! # Layout
//! This file is the facade ([`Store`]) and what every backend shares (keys, staging, the
//! read and list paths), `guards.rs` what undoes an unfinished write; `local.rs` and `s3.rs`
//! hold what only that backend does (the memory backend is object_store's `InMemory` with
//! nothing of its own). Where the write path differs, the store matches on its one backend
//! enum, exhaustively, so a new backend cannot be missed. A request body is any [`Body`].
//!
//! # Write protocol
//! Every PUT streams into a private staging object `_storaged_staging/<uuid>` (a prefix user
//! keys cannot name and LIST never shows) while its SHA-256 is computed. Only once the body is
//! complete and its digest verified is the staging object moved into place, with
//! `rename_if_not_exists` for create-only writes and `rename` otherwise; every failure path
//! deletes the staging object, so a refused or failed PUT leaves nothing behind. The local
//! backend does all of it on one blocking task of its own, with the fsyncs before the 201
//! (`LocalFs::put`: the staged file, then its directory entry).
//!
//! The `s3` backend cannot use that protocol for PUT (a rename there is a copy plus a
//! delete, and a create-only copy needs store-specific configuration), so a PUT writes to the
//! final key with the store's own conditional and multipart operations instead ([`Store::put`]
//! says how). The content-addressed POST ([`Store::put_content_addressed`]) learns its key
//! only at the end, so on S3 it does stage, then copies server-side after a HEAD (the key is
//! the content: a race copies the same bytes) and deletes the staged object. A crash between
//! those steps leaves a staged object, and a lost request an incomplete multipart upload
//! only if the abort itself fails: an S3 lifecycle rule on `_storaged_staging/` (expire,
//! abort incomplete uploads) sweeps them (services/storaged/README.md).

mod guards;
mod hash;
mod local;
mod s3;

pub use local::{DurableDirs, sync_local_object};
pub use s3::S3Settings;

use crate::error::{Result, StoragedError};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use guards::{StagingGuard, UploadGuard};
pub use lakehouse_api::ObjectPutResponse;
use lakehouse_api::{ObjectKey, Sha256Digest};
use local::{LocalFs, Place, Placed, path_conflict};
use object_store::WriteMultipart;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Range;
use std::sync::Arc;

/// Directory (first key segment) of the staging objects. User keys equal to it or below it are
/// refused with `invalid_key`, and LIST hides it.
pub const STAGING_PREFIX: &str = "_storaged_staging";

/// Chunks of a body queued for the local backend's staging writer, at most.
const STAGE_CHUNKS: usize = 8;

/// Default `limit` of a LIST (objects per page).
pub const DEFAULT_LIST_LIMIT: usize = 1000;

/// Largest `limit` a LIST accepts; past it the answer is 400 `invalid_option`. Bounds the
/// memory of one LIST (the heap holds at most `limit + 1` entries).
pub const MAX_LIST_LIMIT: usize = 10_000;

/// Part size of the streamed upload into the staging object, in bytes. Peak memory of one PUT
/// is about `PART_SIZE_BYTES * (MAX_PARTS_IN_FLIGHT + 1)`. An S3 backend will need at least
/// 5 MiB here (its minimum part size).
const PART_SIZE_BYTES: usize = 1024 * 1024;

/// Longest suffix of a content-addressed key ([`Store::put_content_addressed`]), bytes.
pub const MAX_SUFFIX_BYTES: usize = 32;

/// Parts of one PUT being written concurrently; the body is not read while this many are in
/// flight (backpressure to the socket).
const MAX_PARTS_IN_FLIGHT: usize = 2;

/// Bodies up to this many bytes go to S3 as one conditional `PutObject` (`If-None-Match: *`
/// for create-only) after their checksum is verified: atomic, and the buffer is bounded by
/// this size. Larger bodies go up as a multipart upload (see [`Store::put`]).
pub const S3_SINGLE_PUT_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Part size of an S3 multipart upload, in bytes (S3's minimum is 5 MiB, except the last
/// part). Peak memory of one large S3 PUT is about `S3_PART_SIZE_BYTES *
/// (MAX_PARTS_IN_FLIGHT + 1)`, 24 MiB, whatever the object size.
pub const S3_PART_SIZE_BYTES: usize = 8 * 1024 * 1024;

/// Longest key segment the local backend accepts, in bytes: `NAME_MAX` of Linux file systems.
/// Longer segments are valid keys (docs/contract.md section 6) but cannot be file names.
pub const LOCAL_MAX_SEGMENT_BYTES: usize = 255;

/// Which object store holds the objects (docs/contract.md section 7, `backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A directory on the local file system (`root`), fsynced before every 201: the embedded
    /// default.
    Local,
    /// Process memory: fast, lost at exit. For tests and demos only.
    Memory,
    /// An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, R2) through `object_store`'s
    /// `AmazonS3`: the scale-out backend that several storaged replicas can share.
    S3,
}

/// Whether a PUT may replace an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutCondition {
    /// Replace whatever is under the key (no `If-None-Match`).
    Overwrite,
    /// Fail with [`StoragedError::AlreadyExists`] when the key exists (`If-None-Match: *`).
    CreateOnly,
}

/// What [`Store::get`] found.
#[derive(Debug)]
pub enum Fetched {
    /// The object (or the asked range of it), streaming.
    Read(ObjectRead),
    /// The range selects no byte of the object, which has `size` bytes.
    Unsatisfiable {
        /// The object's size in bytes.
        size: u64,
    },
}

/// Whether `range` (`None`: the whole object) selects at least one byte of an object of
/// `size` bytes.
fn satisfiable(range: Option<&GetRange>, size: u64) -> bool {
    match range {
        None => true,
        Some(GetRange::Bounded(r)) => r.start < size,
        Some(GetRange::Offset(start)) => *start < size,
        Some(GetRange::Suffix(n)) => *n > 0 && size > 0,
    }
}

/// An object being read: its metadata, the byte range served and the streamed bytes.
pub struct ObjectRead {
    /// Metadata of the whole object.
    pub meta: ObjectMeta,
    /// The bytes of the object in `body`, end exclusive.
    pub range: Range<u64>,
    /// True when a `Range` was honoured (206), false for the whole object (200).
    pub partial: bool,
    /// The bytes of `range`, streamed from the backend.
    pub body: futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
}

impl std::fmt::Debug for ObjectRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectRead")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .field("partial", &self.partial)
            .finish_non_exhaustive()
    }
}

/// The object store behind storaged, with the invariants of docs/contract.md section 2 on top.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    kind: Kind,
}

/// The backend behind [`Store::inner`], with what only it needs: every place the write path
/// differs matches on it, exhaustively.
#[derive(Debug, Clone)]
enum Kind {
    /// [`Backend::Local`]: staged past the page cache, fsynced before every 201.
    Local(LocalFs),
    /// [`Backend::Memory`]: staged and renamed like the local backend, nothing to sync.
    Memory,
    /// [`Backend::S3`]: PUT writes the final key ([`Store::put_s3`]); the content-addressed
    /// POST stages, then copies.
    S3,
}

/// A request body as the store reads it: a stream of byte chunks that may break off with an
/// error (the client went away, the framing broke), which becomes
/// [`StoragedError::BodyRead`]. Any such stream is one (axum's `Body::into_data_stream()`,
/// a `futures::stream::iter` in tests).
pub trait Body: Stream<Item = std::result::Result<Bytes, Self::Failure>> + Send {
    /// Why the body broke off.
    type Failure: std::error::Error + Send + Sync + 'static;
}

impl<S, E> Body for S
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: std::error::Error + Send + Sync + 'static,
{
    type Failure = E;
}

/// Validates a user-supplied key (docs/contract.md section 6 grammar, not under [`STAGING_PREFIX`]).
///
/// # Errors
/// [`StoragedError::InvalidKey`] naming the broken rule.
pub fn parse_key(raw: &str) -> Result<ObjectKey> {
    let key = ObjectKey::new(raw).map_err(|e| StoragedError::InvalidKey {
        key: raw.to_owned(),
        reason: match e {
            lakehouse_api::NameError::ObjectKey { reason, .. } => reason.to_owned(),
            other => other.to_string(),
        },
    })?;
    if is_staging(key.as_str()) {
        return Err(StoragedError::InvalidKey {
            key: raw.to_owned(),
            reason: format!("keys under {STAGING_PREFIX}/ are reserved for storaged"),
        });
    }
    Ok(key)
}

fn is_staging(key: &str) -> bool {
    key.strip_prefix(STAGING_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn path_of(key: &ObjectKey) -> Path {
    // Every character of a valid key is legal in an object_store path part, so this is the
    // identity on the key's text.
    Path::from(key.as_str())
}

fn backend_error(op: &'static str, key: &str, source: object_store::Error) -> StoragedError {
    match source {
        object_store::Error::NotFound { .. } => StoragedError::NotFound {
            key: key.to_owned(),
        },
        object_store::Error::AlreadyExists { .. } => StoragedError::AlreadyExists {
            key: key.to_owned(),
        },
        source => StoragedError::Backend {
            op,
            key: key.to_owned(),
            source,
        },
    }
}

impl Store {
    /// Opens the configured backend and removes staging debris left by a crash.
    ///
    /// For [`Backend::Local`] `root` is created when missing. Removing all of
    /// [`STAGING_PREFIX`] at start is right while one storaged owns the store; a shared S3
    /// bucket will need an age threshold instead.
    ///
    /// # Errors
    /// [`StoragedError::Io`] when `root` cannot be created or resolved,
    /// [`StoragedError::Backend`] when the debris cannot be listed or deleted.
    pub async fn open(backend: Backend, root: &std::path::Path) -> Result<Store> {
        let store = match backend {
            Backend::Memory => Store {
                inner: Arc::new(object_store::memory::InMemory::new()),
                kind: Kind::Memory,
            },
            Backend::S3 => {
                return Store::open_s3(&S3Settings::default());
            }
            Backend::Local => {
                let (fs, local) = LocalFs::open(root).await?;
                Store {
                    inner: Arc::new(fs),
                    kind: Kind::Local(local),
                }
            }
        };
        store.remove_staging_debris().await?;
        Ok(store)
    }

    /// Local backend: whether staged bodies are written past the page cache (`O_DIRECT`,
    /// where the file system allows it; the default) or through it. No effect elsewhere.
    #[must_use]
    pub fn with_direct_io(mut self, direct_io: bool) -> Self {
        match &mut self.kind {
            Kind::Local(local) => local.direct_io = direct_io,
            Kind::Memory | Kind::S3 => {}
        }
        self
    }

    /// Deletes every staging object (crash debris). On the local backend the whole staging
    /// directory goes, including the `#<n>` part files object_store's listing hides.
    async fn remove_staging_debris(&self) -> Result<()> {
        match &self.kind {
            Kind::Local(local) => return local.remove_staging_debris().await,
            Kind::Memory | Kind::S3 => {}
        }
        let prefix = Path::from(STAGING_PREFIX);
        let locations = self
            .inner
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .boxed();
        self.inner
            .delete_stream(locations)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(|source| backend_error("delete staging debris", STAGING_PREFIX, source))
    }

    /// Streams `body` into `key` (docs/contract.md section 6 `PUT /objects/{key}`), computing its
    /// SHA-256 on the fly; memory stays bounded by the part size, not the body size.
    ///
    /// Atomic: either the whole verified body is under `key` (and, on the local backend,
    /// fsynced) or nothing changed and no staging object remains.
    ///
    /// On the `s3` backend ([`Store::put_s3`]) a body of at most [`S3_SINGLE_PUT_MAX_BYTES`]
    /// is buffered, verified and sent as one `PutObject` (with `If-None-Match: *` when
    /// create-only); a larger one is streamed as a multipart upload to the final key, which
    /// is invisible until completed and is aborted on a checksum mismatch, a taken key or any
    /// failure.
    ///
    /// # Errors
    /// [`StoragedError::InvalidKey`] for a key the backend cannot hold (before any I/O),
    /// [`StoragedError::DigestMismatch`] when `expected` is given and differs,
    /// [`StoragedError::AlreadyExists`] for [`PutCondition::CreateOnly`] on a taken key,
    /// [`StoragedError::BodyRead`] when the body breaks off, [`StoragedError::KeyPathConflict`]
    /// on a local path collision, [`StoragedError::Backend`] / [`StoragedError::Io`] otherwise.
    pub async fn put<B: Body>(
        &self,
        key: &ObjectKey,
        condition: PutCondition,
        expected: Option<&Sha256Digest>,
        body: B,
    ) -> Result<ObjectPutResponse> {
        self.check_backend_limits(key)?;
        match &self.kind {
            Kind::S3 => return self.put_s3(key, condition, expected, body).await,
            Kind::Local(local) => {
                let place = match condition {
                    PutCondition::CreateOnly => Place::CreateOnly(key.clone()),
                    PutCondition::Overwrite => Place::Overwrite(key.clone()),
                };
                let placed = self
                    .put_local(local, expected.cloned(), place, body)
                    .await?;
                return Ok(ObjectPutResponse {
                    key: placed.key,
                    size: placed.size,
                    sha256: placed.sha256,
                });
            }
            Kind::Memory => {}
        }
        let (staging, guard) = self.new_staging();
        match self.stage(&staging, body).await {
            Ok((size, sha256)) => {
                if let Some(expected) = expected.filter(|e| **e != sha256) {
                    guard.discard().await;
                    return Err(StoragedError::DigestMismatch {
                        expected: expected.to_string(),
                        actual: sha256.to_string(),
                    });
                }
                let target = path_of(key);
                let moved = match condition {
                    PutCondition::CreateOnly => {
                        self.inner.rename_if_not_exists(&staging, &target).await
                    }
                    PutCondition::Overwrite => self.inner.rename(&staging, &target).await,
                };
                if let Err(source) = moved {
                    guard.discard().await;
                    return Err(self.rename_error(key, source));
                }
                guard.disarm();
                Ok(ObjectPutResponse {
                    key: key.clone(),
                    size,
                    sha256,
                })
            }
            Err(e) => {
                guard.discard().await;
                Err(e)
            }
        }
    }

    /// Streams `body` into the object named by its own SHA-256, `{dir}/{hex}{suffix}` (the
    /// content-addressed `POST /objects/{dir}`), for a writer that learns the digest only at
    /// the end and wants its bytes on their way meanwhile (ingestd streams Parquet while it
    /// encodes). Returns what is stored and whether this call created it: the key taken
    /// already holds the same bytes (same SHA-256), so that is a success too.
    ///
    /// Atomic like [`Store::put`]: the body is staged under [`STAGING_PREFIX`] and moved into
    /// place only once complete (and `expected`, when given, matched); a broken body leaves
    /// nothing. Local backend: `LocalFs::put` (staged, fsynced, linked create-only, the
    /// directory fsynced), an existing key fsynced again. S3: the staged object is
    /// copied server-side when a HEAD finds the key free, then deleted (a race between two
    /// such writers copies the same bytes twice: harmless, the key is their content).
    ///
    /// # Errors
    /// [`StoragedError::InvalidKey`] for a `dir` or `suffix` that cannot make a key,
    /// [`StoragedError::DigestMismatch`], [`StoragedError::BodyRead`],
    /// [`StoragedError::KeyPathConflict`], [`StoragedError::Backend`] / [`StoragedError::Io`].
    pub async fn put_content_addressed<B: Body>(
        &self,
        dir: &ObjectKey,
        suffix: &str,
        expected: Option<&Sha256Digest>,
        body: B,
    ) -> Result<(ObjectPutResponse, bool)> {
        let valid_suffix = suffix.len() <= MAX_SUFFIX_BYTES
            && suffix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'=' | b'-'));
        if !valid_suffix {
            return Err(StoragedError::InvalidKey {
                key: format!("{dir}/<sha256>{suffix}"),
                reason: format!("suffix must be at most {MAX_SUFFIX_BYTES} of [A-Za-z0-9._=-]"),
            });
        }
        // The longest key this can make, checked before any byte is read.
        let longest = parse_key(&format!("{dir}/{}{suffix}", "0".repeat(64)))?;
        self.check_backend_limits(&longest)?;
        if let Kind::Local(local) = &self.kind {
            let (dir, suffix) = (dir.clone(), suffix.to_owned());
            let name = Box::new(move |sha256: &Sha256Digest| {
                parse_key(&format!("{dir}/{sha256}{suffix}"))
            });
            let placed = self
                .put_local(local, expected.cloned(), Place::ByDigest(name), body)
                .await?;
            let stored = ObjectPutResponse {
                key: placed.key,
                size: placed.size,
                sha256: placed.sha256,
            };
            return Ok((stored, placed.created));
        }
        let (staging, guard) = self.new_staging();
        let (size, sha256) = match self.stage(&staging, body).await {
            Ok(staged) => staged,
            Err(e) => {
                guard.discard().await;
                return Err(e);
            }
        };
        if let Err(e) = check_digest(expected, &sha256) {
            guard.discard().await;
            return Err(e);
        }
        let key = parse_key(&format!("{dir}/{sha256}{suffix}"))?;
        let target = path_of(&key);
        let created = match self.kind {
            Kind::S3 => match self.inner.head(&target).await {
                Ok(_) => false,
                Err(object_store::Error::NotFound { .. }) => {
                    if let Err(e) = self.inner.copy(&staging, &target).await {
                        guard.discard().await;
                        return Err(backend_error("copy into place", key.as_str(), e));
                    }
                    true
                }
                Err(e) => {
                    guard.discard().await;
                    return Err(backend_error("head", key.as_str(), e));
                }
            },
            Kind::Local(_) | Kind::Memory => {
                match self.inner.rename_if_not_exists(&staging, &target).await {
                    Ok(()) => true,
                    Err(object_store::Error::AlreadyExists { .. }) => false,
                    Err(source) => {
                        guard.discard().await;
                        return Err(self.rename_error(&key, source));
                    }
                }
            }
        };
        // The staged object became the key (a rename), or is left over (S3's copy, or the
        // key was there already).
        let moved = match self.kind {
            Kind::S3 => false,
            Kind::Local(_) | Kind::Memory => created,
        };
        if moved {
            guard.disarm();
        } else {
            guard.discard().await;
        }
        Ok((ObjectPutResponse { key, size, sha256 }, created))
    }

    /// Streams `body` into the staging object; returns its size and SHA-256.
    async fn stage<B: Body>(&self, staging: &Path, body: B) -> Result<(u64, Sha256Digest)> {
        // S3 refuses parts under 5 MiB (except the last). The local backend stages through
        // `LocalFs::put` instead and never comes here.
        let part_bytes = match &self.kind {
            Kind::Local(_) | Kind::Memory => PART_SIZE_BYTES,
            Kind::S3 => S3_PART_SIZE_BYTES,
        };
        let key = staging.as_ref();
        let upload = self
            .inner
            .put_multipart(staging)
            .await
            .map_err(|e| backend_error("start upload of", key, e))?;
        // Aborted on every path that does not complete it, a cancelled request included (on
        // S3 an incomplete multipart upload would otherwise stay, invisible and billed).
        let mut guard = UploadGuard(Some(WriteMultipart::new_with_chunk_size(
            upload, part_bytes,
        )));
        let hasher = hash::BodyHasher::spawn();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        while let Some(frame) = body.next().await {
            let bytes = match frame {
                Ok(bytes) => bytes,
                Err(e) => {
                    guard.abort().await;
                    return Err(StoragedError::BodyRead {
                        source: Box::new(e),
                    });
                }
            };
            hasher.update(bytes.clone()).await;
            size += bytes.len() as u64;
            if let Err(e) = guard.writer().wait_for_capacity(MAX_PARTS_IN_FLIGHT).await {
                guard.abort().await;
                return Err(backend_error("upload", key, e));
            }
            guard.writer().put(bytes);
        }
        guard
            .finish()
            .await
            .map_err(|e| backend_error("complete upload of", key, e))?;
        let sha256 = hasher.finish(key).await?;
        Ok((size, sha256))
    }

    /// A fresh staging location under [`STAGING_PREFIX`] and the guard that deletes what is
    /// staged there unless it is moved into place.
    fn new_staging(&self) -> (Path, StagingGuard) {
        let staging = Path::from(format!(
            "{STAGING_PREFIX}/{}",
            uuid::Uuid::new_v4().simple()
        ));
        let guard = StagingGuard {
            store: Arc::clone(&self.inner),
            path: Some(staging.clone()),
        };
        (staging, guard)
    }

    /// [`LocalFs::put`] under a staging guard (the staging file is deleted unless it became
    /// the object), then [`sync_local_object`] when the object is not durable yet: a new
    /// directory, or a content-addressed key that held the bytes already (an earlier write
    /// may have moved it into place and failed before its fsync, so a 201 must not rest on
    /// it unsynced).
    async fn put_local<B: Body>(
        &self,
        local: &LocalFs,
        expected: Option<Sha256Digest>,
        place: Place,
        body: B,
    ) -> Result<Placed> {
        let (staging, guard) = self.new_staging();
        let placed = match local.put(&staging, body, expected, place).await {
            Ok(placed) => placed,
            Err(e) => {
                guard.discard().await;
                return Err(e);
            }
        };
        if placed.created {
            guard.disarm();
        } else {
            guard.discard().await;
        }
        if !placed.durable {
            sync_local_object(&local.root, &placed.key, &local.durable_dirs).await?;
        }
        Ok(placed)
    }

    /// Turns a failed move into place into the error a client can act on.
    fn rename_error(&self, key: &ObjectKey, source: object_store::Error) -> StoragedError {
        let conflict = match &self.kind {
            Kind::Local(local) => path_conflict(&local.root, key),
            Kind::Memory | Kind::S3 => false,
        };
        if conflict {
            return StoragedError::KeyPathConflict {
                key: key.to_string(),
            };
        }
        backend_error("move into place", key.as_str(), source)
    }

    /// Refuses keys the backend cannot hold although the key grammar allows them: on the
    /// local backend a segment is a file name, at most [`LOCAL_MAX_SEGMENT_BYTES`] bytes.
    fn check_backend_limits(&self, key: &ObjectKey) -> Result<()> {
        match self.kind {
            Kind::Local(_) => LocalFs::check_key(key),
            Kind::Memory | Kind::S3 => Ok(()),
        }
    }

    /// Opens `key` for reading, the whole object (`range` `None`) or one range (docs/contract.md
    /// section 6 `GET /objects/{key}`). A range that selects no byte of the object is
    /// [`Fetched::Unsatisfiable`] with the object's size.
    ///
    /// # Errors
    /// [`StoragedError::NotFound`], [`StoragedError::Backend`].
    pub async fn get(&self, key: &ObjectKey, range: Option<GetRange>) -> Result<Fetched> {
        self.check_backend_limits(key)?;
        let location = path_of(key);
        let options = GetOptions::new().with_range(range.clone());
        let result = match self.inner.get_opts(&location, options).await {
            Ok(result) => result,
            Err(e @ object_store::Error::NotFound { .. }) => {
                return Err(backend_error("get", key.as_str(), e));
            }
            Err(e) => {
                // A range past the end fails differently per backend; decide from the size.
                let meta = self.head(key).await?;
                if !satisfiable(range.as_ref(), meta.size) {
                    return Ok(Fetched::Unsatisfiable { size: meta.size });
                }
                return Err(backend_error("get", key.as_str(), e));
            }
        };
        if !satisfiable(range.as_ref(), result.meta.size) {
            return Ok(Fetched::Unsatisfiable {
                size: result.meta.size,
            });
        }
        Ok(Fetched::Read(ObjectRead {
            meta: result.meta.clone(),
            range: result.range.clone(),
            partial: range.is_some(),
            body: result.into_stream(),
        }))
    }

    /// Metadata of `key` (docs/contract.md section 6 `HEAD /objects/{key}`).
    ///
    /// # Errors
    /// [`StoragedError::NotFound`], [`StoragedError::Backend`].
    pub async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.check_backend_limits(key)?;
        self.inner
            .head(&path_of(key))
            .await
            .map_err(|e| backend_error("head", key.as_str(), e))
    }

    /// Deletes `key` (docs/contract.md section 6 `DELETE /objects/{key}`).
    ///
    /// # Errors
    /// [`StoragedError::NotFound`] when there is no such object (some backends delete missing
    /// objects silently, so this checks first), [`StoragedError::Backend`].
    pub async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.head(key).await?;
        self.inner
            .delete(&path_of(key))
            .await
            .map_err(|e| backend_error("delete", key.as_str(), e))
    }

    /// One page of keys in ascending byte order (docs/contract.md section 6 `GET /objects`).
    ///
    /// `prefix` is a plain string prefix (`datasets/fl` matches `datasets/flights/x`), keys
    /// `<= start_after` are skipped, and at most `limit` objects come back, with
    /// `next_start_after` set to the last one when more matched. Staging objects and files
    /// whose names are not valid keys are never listed.
    ///
    /// The backend lists under the longest `/`-terminated part of `prefix` in no particular
    /// order; a max-heap keeps the `limit + 1` smallest matches, so memory is bounded by
    /// `limit`, not by the number of keys.
    ///
    /// # Errors
    /// [`StoragedError::Backend`] when the backend listing fails.
    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        let directory = match prefix.rfind('/') {
            None => None,
            Some(slash) => match ObjectKey::new(&prefix[..slash]) {
                Ok(dir) => Some(path_of(&dir)),
                // No valid key has this directory part, so nothing can match.
                Err(_) => return Ok(empty_page()),
            },
        };
        let mut listing = match start_after.map(ObjectKey::new) {
            Some(Ok(offset)) => self
                .inner
                .list_with_offset(directory.as_ref(), &path_of(&offset)),
            _ => self.inner.list(directory.as_ref()),
        };
        let mut heap: BinaryHeap<ByKey> = BinaryHeap::with_capacity(limit + 1);
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| backend_error("list", prefix, e))?;
            let key = meta.location.as_ref();
            if !key.starts_with(prefix)
                || is_staging(key)
                || start_after.is_some_and(|after| key <= after)
            {
                continue;
            }
            if heap.len() > limit {
                match heap.peek() {
                    Some(largest) if largest.0.location.as_ref() > key => {
                        heap.pop();
                    }
                    _ => continue,
                }
            }
            heap.push(ByKey(meta));
        }
        let mut metas: Vec<ObjectMeta> = heap.into_sorted_vec().into_iter().map(|k| k.0).collect();
        let more = metas.len() > limit;
        metas.truncate(limit);
        let next_start_after = more
            .then(|| metas.last().map(|m| m.location.to_string()))
            .flatten();
        Ok(ListPage {
            objects: metas,
            next_start_after,
        })
    }

    /// The "directories" right under `prefix` (empty, or ending in `/`): for every key
    /// `<prefix><dir>/<rest>`, `<prefix><dir>/` once, ascending. One listing with the
    /// delimiter `/` (a single directory read on the local backend, a delimited LIST on s3),
    /// so its cost is that of the directories, not of the keys below them.
    ///
    /// # Errors
    /// [`StoragedError::Backend`] when the backend listing fails.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let directory = match prefix.strip_suffix('/') {
            None if prefix.is_empty() => None,
            None => return Ok(Vec::new()),
            Some(dir) => match ObjectKey::new(dir) {
                Ok(dir) => Some(path_of(&dir)),
                Err(_) => return Ok(Vec::new()),
            },
        };
        let listed = self
            .inner
            .list_with_delimiter(directory.as_ref())
            .await
            .map_err(|e| backend_error("list", prefix, e))?;
        let mut dirs: Vec<String> = listed
            .common_prefixes
            .iter()
            .map(|dir| format!("{dir}/"))
            .filter(|dir| dir.starts_with(prefix) && !is_staging(dir))
            .collect();
        dirs.sort();
        dirs.dedup();
        Ok(dirs)
    }

    /// Readiness probe: a HEAD of a key that never exists must answer (not found is fine), and
    /// the local root must still be a directory.
    ///
    /// # Errors
    /// [`StoragedError::NotReady`] with the failure.
    pub async fn ready(&self) -> Result<()> {
        match &self.kind {
            Kind::Local(local) => local.ready().await?,
            Kind::Memory | Kind::S3 => {}
        }
        let probe = Path::from(format!("{STAGING_PREFIX}/readyz-probe"));
        match self.inner.head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoragedError::NotReady {
                source: Box::new(e),
            }),
        }
    }
}

/// One page of [`Store::list`]: the objects' metadata ascending by key, and the key to pass
/// as `start_after` for the next page when more matched.
#[derive(Debug)]
pub struct ListPage {
    /// At most `limit` objects, ascending by key.
    pub objects: Vec<ObjectMeta>,
    /// The last key of this page when more keys matched.
    pub next_start_after: Option<String>,
}

fn empty_page() -> ListPage {
    ListPage {
        objects: Vec::new(),
        next_start_after: None,
    }
}

/// Orders listed objects by key bytes, for the bounded heap of [`Store::list`].
struct ByKey(ObjectMeta);

impl PartialEq for ByKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.location == other.0.location
    }
}
impl Eq for ByKey {}
impl PartialOrd for ByKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.location.as_ref().cmp(other.0.location.as_ref())
    }
}

fn check_digest(expected: Option<&Sha256Digest>, actual: &Sha256Digest) -> Result<()> {
    match expected {
        Some(expected) if expected != actual => Err(StoragedError::DigestMismatch {
            expected: expected.to_string(),
            actual: actual.to_string(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert!(satisfiable(Some(&GetRange::Bounded(0..101)), 10));
        assert!(!satisfiable(Some(&GetRange::Offset(10)), 10));
        assert!(!satisfiable(Some(&GetRange::Bounded(10..21)), 10));
        assert!(satisfiable(Some(&GetRange::Suffix(100)), 10));
        assert!(!satisfiable(Some(&GetRange::Suffix(1)), 0));
        assert!(satisfiable(None, 0));
    }

    #[test]
    fn staging_keys_are_reserved() {
        for bad in ["_storaged_staging", "_storaged_staging/x", "..", "a//b"] {
            assert!(parse_key(bad).is_err(), "{bad}");
        }
        for ok in [
            "_storaged_staging2/x",
            "_storaged_stagingx",
            "a/_storaged_staging",
        ] {
            assert!(parse_key(ok).is_ok(), "{ok}");
        }
    }

    #[tokio::test]
    async fn list_keeps_the_smallest_keys_in_order() {
        let store = Store::open(Backend::Memory, std::path::Path::new("unused"))
            .await
            .unwrap();
        for key in ["b/3", "b/1", "a/1", "b/2", "b/10", "ba/1", "c"] {
            let key = parse_key(key).unwrap();
            let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"x"))]);
            store
                .put(&key, PutCondition::Overwrite, None, body)
                .await
                .unwrap();
        }
        let page = store.list("b", None, 3).await.unwrap();
        let keys: Vec<&str> = page.objects.iter().map(|o| o.location.as_ref()).collect();
        assert_eq!(keys, ["b/1", "b/10", "b/2"]);
        assert_eq!(page.next_start_after.as_deref(), Some("b/2"));
        let page = store.list("b", Some("b/2"), 3).await.unwrap();
        let keys: Vec<&str> = page.objects.iter().map(|o| o.location.as_ref()).collect();
        assert_eq!(keys, ["b/3", "ba/1"]);
        assert_eq!(page.next_start_after, None);
        assert!(store.list("a//", None, 3).await.unwrap().objects.is_empty());
    }

    /// The first object in a directory flushes it and every directory up to the root (5
    /// paths for `a/b/c/first.parquet`) and the set learns them; a second object there
    /// flushes itself and its own directory only (2), and a missing file there is still an
    /// error, not skipped.
    #[tokio::test]
    async fn directories_made_durable_are_not_flushed_again() {
        let root = tempfile::tempdir().unwrap();
        let known = DurableDirs::default();
        let first = parse_key("a/b/c/first.parquet").unwrap();
        let file = root.path().join(first.as_str());
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"bytes").unwrap();
        sync_local_object(root.path(), &first, &known)
            .await
            .unwrap();
        for dir in ["a/b/c", "a/b", "a", ""] {
            let dir = root.path().join(dir);
            assert!(known.contains(dir.components().as_path()), "{dir:?}");
        }
        std::fs::write(root.path().join("a/b/c/second.parquet"), b"more").unwrap();
        let second = parse_key("a/b/c/second.parquet").unwrap();
        sync_local_object(root.path(), &second, &known)
            .await
            .unwrap();
        let missing = parse_key("a/b/c/missing.parquet").unwrap();
        assert!(
            sync_local_object(root.path(), &missing, &known)
                .await
                .is_err()
        );
    }

    /// A key with more paths than fsyncs run at once is synced whole, and a failure is
    /// reported for the path nearest the file, whichever fsync finished first.
    #[tokio::test]
    async fn deep_keys_are_synced_and_the_nearest_failure_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let dirs: Vec<String> = (0..20).map(|i| format!("d{i}")).collect();
        let deep = parse_key(&format!("{}/object.parquet", dirs.join("/"))).unwrap();
        let file = root.path().join(deep.as_str());
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"bytes").unwrap();
        sync_local_object(root.path(), &deep, &DurableDirs::default())
            .await
            .unwrap();

        // Nothing of this key exists below the root: 21 of its 22 paths fail.
        let missing = parse_key(&format!(
            "{}/gone.parquet",
            dirs.join("/").replace('d', "m")
        ))
        .unwrap();
        match sync_local_object(root.path(), &missing, &DurableDirs::default()).await {
            Err(StoragedError::Io { op, path, .. }) => {
                assert_eq!(op, "fsync");
                assert_eq!(path, root.path().join(missing.as_str()));
            }
            other => panic!("expected the object's own fsync error, got {other:?}"),
        }
    }
}
