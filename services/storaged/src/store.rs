//! The domain layer of storaged: object keys, create-only and verified writes, ranged reads
//! and ordered listing over an `Arc<dyn ObjectStore>` (DESIGN.md sections 2 and 6).
//!
//! Not HTTP: handlers parse the request, call one method here and map the error.
//!
//! # Write protocol
//! Every PUT streams into a private staging object `_storaged_staging/<uuid>` (a prefix user
//! keys cannot name and LIST never shows) while its SHA-256 is computed. Only once the body is
//! complete and its digest verified is the staging object moved into place, with
//! `rename_if_not_exists` for create-only writes and `rename` otherwise; every failure path
//! deletes the staging object, so a refused or failed PUT leaves nothing behind. On the local
//! backend the object is then fsynced ([`sync_local_object`]) before the 201.
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

use crate::error::{Result, StoragedError};
use bytes::Bytes;
use chrono::SecondsFormat;
use futures::{Stream, StreamExt, TryStreamExt};
pub use lakehouse_api::ObjectPutResponse;
use lakehouse_api::{ObjectInfo, ObjectKey, ObjectListResponse, Sha256Digest};
use lakehouse_server::direct::DirectWriter;
use object_store::WriteMultipart;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayloadMut,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Range;
use std::path::PathBuf;
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
/// Longer segments are valid keys (DESIGN.md section 6) but cannot be file names.
pub const LOCAL_MAX_SEGMENT_BYTES: usize = 255;

/// Which object store holds the objects (DESIGN.md section 7, `backend`).
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

/// Where the `s3` backend's bucket is (DESIGN.md section 7). Empty strings leave the value to
/// the usual `AWS_*` environment variables (`AWS_ENDPOINT`, `AWS_REGION`, ...), which also
/// carry the credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// Bucket name (required).
    pub bucket: String,
    /// Endpoint URL, e.g. `http://127.0.0.1:9000` for MinIO; empty for AWS itself.
    pub endpoint: String,
    /// Region, e.g. `us-east-1`; empty for `AWS_REGION` or `us-east-1`.
    pub region: String,
    /// Allow plain `http://` endpoints (a loopback test server, a MinIO on a trusted LAN).
    pub allow_http: bool,
}

/// Whether a PUT may replace an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutCondition {
    /// Replace whatever is under the key (no `If-None-Match`).
    Overwrite,
    /// Fail with [`StoragedError::AlreadyExists`] when the key exists (`If-None-Match: *`).
    CreateOnly,
}

/// What part of an object a GET asks for, from its `Range` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByteRange {
    /// No `Range` header, a unit other than `bytes`, or several ranges: the whole object (200).
    Whole,
    /// One satisfiable-looking range (206 when it fits the object, else 416).
    Part(GetRange),
    /// A `bytes=` header that does not parse: always 416.
    Malformed,
}

impl ByteRange {
    /// Reads a `Range` header value (RFC 9110 section 14.2): `bytes=a-b`, `bytes=a-` or
    /// `bytes=-n`.
    ///
    /// Multi-range requests (`bytes=0-1,5-6`) are answered with the whole object and a 200, as
    /// RFC 9110 allows, instead of a `multipart/byteranges` body. A header whose unit is not
    /// `bytes` is ignored (also as RFC 9110 requires); a `bytes=` header that does not parse
    /// is [`ByteRange::Malformed`].
    pub fn from_header(value: Option<&str>) -> ByteRange {
        use http_range_header::{EndPosition, StartPosition};
        let Some(value) = value else {
            return ByteRange::Whole;
        };
        if !value.trim_start().starts_with("bytes=") {
            return ByteRange::Whole;
        }
        let Ok(parsed) = http_range_header::parse_range_header(value.trim()) else {
            return ByteRange::Malformed;
        };
        match parsed.ranges.as_slice() {
            [one] => match (one.start, one.end) {
                (StartPosition::Index(a), EndPosition::Index(b)) if b >= a => {
                    ByteRange::Part(GetRange::Bounded(a..b.saturating_add(1)))
                }
                (StartPosition::Index(a), EndPosition::LastByte) => {
                    ByteRange::Part(GetRange::Offset(a))
                }
                (StartPosition::FromLast(n), _) if n > 0 => ByteRange::Part(GetRange::Suffix(n)),
                _ => ByteRange::Malformed,
            },
            [] => ByteRange::Malformed,
            _ => ByteRange::Whole,
        }
    }

    /// Whether this range selects at least one byte of an object of `size` bytes.
    fn satisfiable(&self, size: u64) -> bool {
        match self {
            ByteRange::Whole => true,
            ByteRange::Malformed => false,
            ByteRange::Part(GetRange::Bounded(r)) => r.start < size,
            ByteRange::Part(GetRange::Offset(start)) => *start < size,
            ByteRange::Part(GetRange::Suffix(n)) => *n > 0 && size > 0,
        }
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

/// The object store behind storaged, with the invariants of DESIGN.md section 2 on top.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// Canonical root directory of the local backend (`None` for other backends): where
    /// [`sync_local_object`] finds the files to fsync.
    local_root: Option<PathBuf>,
    /// True for the `s3` backend, which writes without staging ([`Store::put`]).
    s3: bool,
    /// Local backend: staged bodies are written past the page cache where the file system
    /// allows it ([`DirectWriter`]).
    direct_io: bool,
}

/// Validates a user-supplied key (DESIGN.md section 6 grammar, not under [`STAGING_PREFIX`]).
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

/// The HTTP form of an object's entity tag: the backend's tag in double quotes (the local
/// backend reports it bare, the memory backend already quoted).
pub fn quoted_etag(meta: &ObjectMeta) -> Option<String> {
    meta.e_tag
        .as_deref()
        .map(|tag| format!("\"{}\"", tag.trim_matches('"')))
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
                local_root: None,
                s3: false,
                direct_io: false,
            },
            Backend::S3 => {
                return Store::open_s3(&S3Settings::default());
            }
            Backend::Local => {
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
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&canonical)
                    .map_err(|source| StoragedError::Backend {
                        op: "open",
                        key: canonical.display().to_string(),
                        source,
                    })?;
                Store {
                    inner: Arc::new(fs),
                    local_root: Some(canonical),
                    s3: false,
                    direct_io: true,
                }
            }
        };
        store.remove_staging_debris().await?;
        Ok(store)
    }

    /// Opens the `s3` backend: `AmazonS3Builder::from_env()` (credentials and any other
    /// `AWS_*` settings), then the non-empty `settings` on top. Conditional PUT stays at
    /// object_store's default, `If-None-Match: *` / `If-Match`, which S3 honours since 2024.
    ///
    /// No staging objects are used on S3, so there is no debris to remove; an upload cut by a
    /// crash stays an invisible incomplete multipart upload (a bucket lifecycle rule
    /// `AbortIncompleteMultipartUpload` reclaims its space).
    ///
    /// # Errors
    /// [`StoragedError::Backend`] when the settings are incomplete (no bucket) or invalid.
    pub fn open_s3(settings: &S3Settings) -> Result<Store> {
        let mut builder = object_store::aws::AmazonS3Builder::from_env();
        if !settings.bucket.is_empty() {
            builder = builder.with_bucket_name(&settings.bucket);
        }
        if !settings.endpoint.is_empty() {
            builder = builder.with_endpoint(&settings.endpoint);
        }
        if !settings.region.is_empty() {
            builder = builder.with_region(&settings.region);
        }
        if settings.allow_http {
            builder = builder.with_allow_http(true);
        }
        let s3 = builder.build().map_err(|source| StoragedError::Backend {
            op: "open",
            key: format!("s3 bucket {:?}", settings.bucket),
            source,
        })?;
        Ok(Store {
            inner: Arc::new(s3),
            local_root: None,
            s3: true,
            direct_io: false,
        })
    }

    /// Local backend: whether staged bodies are written past the page cache (`O_DIRECT`,
    /// where the file system allows it; the default) or through it. No effect elsewhere.
    #[must_use]
    pub fn with_direct_io(mut self, direct_io: bool) -> Self {
        self.direct_io = direct_io && self.local_root.is_some();
        self
    }

    /// Deletes every staging object (crash debris). On the local backend the whole staging
    /// directory goes, including the `#<n>` part files object_store's listing hides.
    async fn remove_staging_debris(&self) -> Result<()> {
        if let Some(root) = &self.local_root {
            let dir = root.join(STAGING_PREFIX);
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
            return Ok(());
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

    /// Streams `body` into `key` (DESIGN.md section 6 `PUT /objects/{key}`), computing its
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
    pub async fn put<S, E>(
        &self,
        key: &ObjectKey,
        condition: PutCondition,
        expected: Option<&Sha256Digest>,
        body: S,
    ) -> Result<ObjectPutResponse>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::error::Error + Send + Sync + 'static,
    {
        self.check_backend_limits(key)?;
        if self.s3 {
            return self.put_s3(key, condition, expected, body).await;
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
                    return Err(self.rename_error(key, source).await);
                }
                guard.disarm();
                self.sync_local(key).await?;
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
    /// nothing. Local backend: a create-only rename, then fsync. S3: the staged object is
    /// copied server-side when a HEAD finds the key free, then deleted (a race between two
    /// such writers copies the same bytes twice: harmless, the key is their content).
    ///
    /// # Errors
    /// [`StoragedError::InvalidKey`] for a `dir` or `suffix` that cannot make a key,
    /// [`StoragedError::DigestMismatch`], [`StoragedError::BodyRead`],
    /// [`StoragedError::KeyPathConflict`], [`StoragedError::Backend`] / [`StoragedError::Io`].
    pub async fn put_content_addressed<S, E>(
        &self,
        dir: &ObjectKey,
        suffix: &str,
        expected: Option<&Sha256Digest>,
        body: S,
    ) -> Result<(ObjectPutResponse, bool)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::error::Error + Send + Sync + 'static,
    {
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
        let created = if self.s3 {
            match self.inner.head(&target).await {
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
            }
        } else {
            match self.inner.rename_if_not_exists(&staging, &target).await {
                Ok(()) => true,
                Err(object_store::Error::AlreadyExists { .. }) => false,
                Err(source) => {
                    guard.discard().await;
                    return Err(self.rename_error(&key, source).await);
                }
            }
        };
        if created && !self.s3 {
            guard.disarm();
        } else {
            guard.discard().await;
        }
        // Also when the key was there already: an earlier write may have moved it into
        // place and failed before its fsync, so a 200 must not rest on it unsynced.
        self.sync_local(&key).await?;
        Ok((ObjectPutResponse { key, size, sha256 }, created))
    }

    /// Streams `body` into the staging object; returns its size and SHA-256.
    async fn stage<S, E>(&self, staging: &Path, body: S) -> Result<(u64, Sha256Digest)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::error::Error + Send + Sync + 'static,
    {
        if let Some(root) = &self.local_root {
            return self.stage_local(root, staging, body).await;
        }
        let key = staging.as_ref();
        let upload = self
            .inner
            .put_multipart(staging)
            .await
            .map_err(|e| backend_error("start upload of", key, e))?;
        // S3 refuses parts under 5 MiB (except the last).
        let part_bytes = if self.s3 {
            S3_PART_SIZE_BYTES
        } else {
            PART_SIZE_BYTES
        };
        // Aborted on every path that does not complete it, a cancelled request included (on
        // S3 an incomplete multipart upload would otherwise stay, invisible and billed).
        let mut guard = UploadGuard(Some(WriteMultipart::new_with_chunk_size(
            upload, part_bytes,
        )));
        let mut hasher = Sha256::new();
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
            // Frames are at most a few hundred KiB, so hashing one stays well under the
            // half-millisecond budget of a runtime thread.
            hasher.update(&bytes);
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
        let sha256 =
            Sha256Digest::new(hex::encode(hasher.finalize())).map_err(|e| StoragedError::Io {
                op: "hash",
                path: PathBuf::from(key),
                source: std::io::Error::other(e),
            })?;
        Ok((size, sha256))
    }

    /// [`Store::stage`] on the local backend: the body goes to the staging file from a
    /// blocking writer thread, past the page cache when `direct_io` ([`DirectWriter`]), so
    /// the fsync before the 201 has little left to flush and no page of the cache is taken
    /// (docs/performance.md). Hashed on the way, like the other backends.
    async fn stage_local<S, E>(
        &self,
        root: &std::path::Path,
        staging: &Path,
        body: S,
    ) -> Result<(u64, Sha256Digest)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::error::Error + Send + Sync + 'static,
    {
        let file_path = root.join(staging.as_ref());
        let io = |op, source| StoragedError::Io {
            op,
            path: PathBuf::from(staging.as_ref()),
            source,
        };
        if let Some(dir) = file_path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io("create directory", e))?;
        }
        let (chunks, mut received) = tokio::sync::mpsc::channel::<Bytes>(STAGE_CHUNKS);
        let direct = self.direct_io;
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            let mut file = DirectWriter::open(&file_path, true, direct)?;
            while let Some(chunk) = received.blocking_recv() {
                file.write(&chunk)?;
            }
            file.finish()
        });
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        let mut body_error = None;
        while let Some(frame) = body.next().await {
            match frame {
                Ok(bytes) => {
                    hasher.update(&bytes);
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
        let file = written.map_err(|e| io("write", e))?;
        // The bytes are on disk before the object gets its name (DESIGN.md section 2,
        // invariant 3): a crash after the rename cannot leave a key naming unflushed data.
        tokio::task::spawn_blocking(move || file.sync_all())
            .await
            .map_err(|join| io("fsync", std::io::Error::other(join)))?
            .map_err(|e| io("fsync", e))?;
        let sha256 =
            Sha256Digest::new(hex::encode(hasher.finalize())).map_err(|e| StoragedError::Io {
                op: "hash",
                path: PathBuf::from(staging.as_ref()),
                source: std::io::Error::other(e),
            })?;
        Ok((size, sha256))
    }

    /// The `s3` write path of [`Store::put`]: no staging object, no rename.
    ///
    /// - Small bodies (up to [`S3_SINGLE_PUT_MAX_BYTES`]): buffered while hashed, verified,
    ///   then one `put_opts` with [`PutMode::Create`] (`If-None-Match: *`, 412 from S3 becomes
    ///   [`StoragedError::AlreadyExists`]) or [`PutMode::Overwrite`]. Atomic on S3.
    /// - Larger bodies: a multipart upload to the final key in [`S3_PART_SIZE_BYTES`] parts,
    ///   at most [`MAX_PARTS_IN_FLIGHT`] in flight. Nothing is visible until
    ///   `CompleteMultipartUpload`; a checksum mismatch, a broken body, a failed part, a
    ///   create-only key found taken just before completion, or a cancelled request (client
    ///   gone) aborts the upload instead.
    ///
    /// object_store 0.14's `MultipartUpload::complete` sends no `If-None-Match`, so for a
    /// large create-only body the key check is a HEAD right before completion: two uploads
    /// of one large key racing inside that window both complete and the later one wins.
    /// DESIGN.md's writers never depend on that window: manifests (the catalog's version
    /// race) are small single conditional PUTs, and every large object's key is the SHA-256
    /// of its bytes, verified here, so the racers write the same bytes.
    async fn put_s3<S, E>(
        &self,
        key: &ObjectKey,
        condition: PutCondition,
        expected: Option<&Sha256Digest>,
        body: S,
    ) -> Result<ObjectPutResponse>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::error::Error + Send + Sync + 'static,
    {
        let location = path_of(key);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        let body_error = |e: E| StoragedError::BodyRead {
            source: Box::new(e),
        };

        // Buffer up to the single-PUT threshold.
        let mut buffered = PutPayloadMut::new();
        let mut upload: Option<UploadGuard> = None;
        while let Some(frame) = body.next().await {
            let bytes = frame.map_err(body_error)?;
            hasher.update(&bytes);
            size += bytes.len() as u64;
            buffered.push(bytes);
            if buffered.content_length() > S3_SINGLE_PUT_MAX_BYTES {
                let started = self
                    .inner
                    .put_multipart(&location)
                    .await
                    .map_err(|e| backend_error("start upload of", key.as_str(), e))?;
                let mut writer = WriteMultipart::new_with_chunk_size(started, S3_PART_SIZE_BYTES);
                for piece in std::mem::take(&mut buffered).freeze() {
                    writer.put(piece);
                }
                upload = Some(UploadGuard(Some(writer)));
                break;
            }
        }

        let Some(mut guard) = upload else {
            let sha256 = digest_of(hasher, key)?;
            check_digest(expected, &sha256)?;
            let mode = match condition {
                PutCondition::CreateOnly => PutMode::Create,
                PutCondition::Overwrite => PutMode::Overwrite,
            };
            self.inner
                .put_opts(&location, buffered.freeze(), PutOptions::from(mode))
                .await
                .map_err(|e| backend_error("put", key.as_str(), e))?;
            return Ok(ObjectPutResponse {
                key: key.clone(),
                size,
                sha256,
            });
        };

        // Stream the rest as parts; every early return below aborts the upload (the guard).
        while let Some(frame) = body.next().await {
            let bytes = match frame {
                Ok(bytes) => bytes,
                Err(e) => {
                    guard.abort().await;
                    return Err(body_error(e));
                }
            };
            hasher.update(&bytes);
            size += bytes.len() as u64;
            let writer = guard.writer();
            if let Err(e) = writer.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await {
                guard.abort().await;
                return Err(backend_error("upload", key.as_str(), e));
            }
            guard.writer().put(bytes);
        }
        let sha256 =
            match digest_of(hasher, key).and_then(|d| check_digest(expected, &d).map(|()| d)) {
                Ok(sha256) => sha256,
                Err(e) => {
                    guard.abort().await;
                    return Err(e);
                }
            };
        if condition == PutCondition::CreateOnly {
            match self.inner.head(&location).await {
                Err(object_store::Error::NotFound { .. }) => {}
                Ok(_) => {
                    guard.abort().await;
                    return Err(StoragedError::AlreadyExists {
                        key: key.to_string(),
                    });
                }
                Err(e) => {
                    guard.abort().await;
                    return Err(backend_error("head", key.as_str(), e));
                }
            }
        }
        guard
            .finish()
            .await
            .map_err(|e| backend_error("complete upload of", key.as_str(), e))?;
        Ok(ObjectPutResponse {
            key: key.clone(),
            size,
            sha256,
        })
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

    /// On the local backend, makes the object at `key` durable ([`sync_local_object`]) before
    /// its 201; nothing to do elsewhere.
    async fn sync_local(&self, key: &ObjectKey) -> Result<()> {
        match &self.local_root {
            Some(root) => sync_local_object(root, key).await,
            None => Ok(()),
        }
    }

    /// Turns a failed move into place into the error a client can act on.
    async fn rename_error(&self, key: &ObjectKey, source: object_store::Error) -> StoragedError {
        if let Some(root) = &self.local_root
            && local_path_conflict(root, key).await
        {
            return StoragedError::KeyPathConflict {
                key: key.to_string(),
            };
        }
        backend_error("move into place", key.as_str(), source)
    }

    /// Refuses keys the backend cannot hold although the key grammar allows them: on the
    /// local backend a segment is a file name, at most [`LOCAL_MAX_SEGMENT_BYTES`] bytes.
    fn check_backend_limits(&self, key: &ObjectKey) -> Result<()> {
        if self.local_root.is_some()
            && key
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

    /// Opens `key` for reading, the whole object or one range (DESIGN.md section 6
    /// `GET /objects/{key}`).
    ///
    /// # Errors
    /// [`StoragedError::NotFound`], [`StoragedError::RangeNotSatisfiable`] (with the object's
    /// size), [`StoragedError::Backend`].
    pub async fn get(
        &self,
        key: &ObjectKey,
        range: &ByteRange,
        header: &str,
    ) -> Result<ObjectRead> {
        self.check_backend_limits(key)?;
        let location = path_of(key);
        let unsatisfiable = |size| StoragedError::RangeNotSatisfiable {
            range: header.to_owned(),
            size,
        };
        let get_range = match range {
            ByteRange::Whole => None,
            ByteRange::Part(r) => Some(r.clone()),
            ByteRange::Malformed => {
                let meta = self.head(key).await?;
                return Err(unsatisfiable(meta.size));
            }
        };
        let options = GetOptions::new().with_range(get_range.clone());
        let result = match self.inner.get_opts(&location, options).await {
            Ok(result) => result,
            Err(e @ object_store::Error::NotFound { .. }) => {
                return Err(backend_error("get", key.as_str(), e));
            }
            Err(e) => {
                // A range past the end fails differently per backend; decide from the size.
                let meta = self.head(key).await?;
                if !range.satisfiable(meta.size) {
                    return Err(unsatisfiable(meta.size));
                }
                return Err(backend_error("get", key.as_str(), e));
            }
        };
        if !range.satisfiable(result.meta.size) {
            return Err(unsatisfiable(result.meta.size));
        }
        Ok(ObjectRead {
            meta: result.meta.clone(),
            range: result.range.clone(),
            partial: get_range.is_some(),
            body: result.into_stream(),
        })
    }

    /// Metadata of `key` (DESIGN.md section 6 `HEAD /objects/{key}`).
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

    /// Deletes `key` (DESIGN.md section 6 `DELETE /objects/{key}`).
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

    /// One page of keys in ascending byte order (DESIGN.md section 6 `GET /objects`).
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
    ) -> Result<ObjectListResponse> {
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
        let objects: Vec<ObjectInfo> = metas
            .iter()
            .filter_map(|meta| {
                let key = ObjectKey::new(meta.location.as_ref()).ok()?;
                Some(ObjectInfo {
                    key,
                    size: meta.size,
                    etag: quoted_etag(meta),
                    last_modified: meta
                        .last_modified
                        .to_rfc3339_opts(SecondsFormat::Millis, true),
                })
            })
            .collect();
        let next_start_after = more
            .then(|| metas.last().map(|m| m.location.to_string()))
            .flatten();
        Ok(ObjectListResponse {
            objects,
            next_start_after,
        })
    }

    /// Readiness probe: a HEAD of a key that never exists must answer (not found is fine), and
    /// the local root must still be a directory.
    ///
    /// # Errors
    /// [`StoragedError::NotReady`] with the failure.
    pub async fn ready(&self) -> Result<()> {
        if let Some(root) = &self.local_root {
            match tokio::fs::metadata(root).await {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(StoragedError::NotReady {
                        source: "storage root is not a directory".into(),
                    });
                }
                Err(e) => {
                    return Err(StoragedError::NotReady {
                        source: Box::new(e),
                    });
                }
            }
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

fn empty_page() -> ObjectListResponse {
    ObjectListResponse {
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

/// Deletes a staging object on every path that does not move it into place: awaited on the
/// error paths ([`StagingGuard::discard`]), spawned from `Drop` when the request is cancelled
/// (client gone) mid-upload.
struct StagingGuard {
    store: Arc<dyn ObjectStore>,
    path: Option<Path>,
}

impl StagingGuard {
    async fn discard(mut self) {
        if let Some(path) = self.path.take() {
            delete_quietly(&*self.store, &path).await;
        }
    }

    fn disarm(mut self) {
        self.path = None;
    }
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let store = Arc::clone(&self.store);
            runtime.spawn(async move { delete_quietly(&*store, &path).await });
        }
    }
}

/// A multipart upload in flight on the `s3` backend: aborted on every path that does not
/// complete it, awaited on the error paths, spawned from `Drop` when the request is cancelled.
struct UploadGuard(Option<WriteMultipart>);

impl UploadGuard {
    fn writer(&mut self) -> &mut WriteMultipart {
        self.0
            .as_mut()
            .expect("upload is in flight until finished or aborted")
    }

    async fn abort(&mut self) {
        if let Some(writer) = self.0.take()
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(error = %e, "could not abort a multipart upload");
        }
    }

    /// Completes the upload; a failure to complete aborts it.
    async fn finish(&mut self) -> object_store::Result<()> {
        let Some(writer) = self.0.take() else {
            return Ok(());
        };
        // `finish` waits for the parts in flight, uploads the last one and completes; when
        // any of that fails it aborts the upload itself.
        writer.finish().await.map(|_| ())
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = writer.abort().await {
                    tracing::warn!(error = %e, "could not abort a cancelled multipart upload");
                }
            });
        }
    }
}

fn digest_of(hasher: Sha256, key: &ObjectKey) -> Result<Sha256Digest> {
    Sha256Digest::new(hex::encode(hasher.finalize())).map_err(|e| StoragedError::Io {
        op: "hash",
        path: PathBuf::from(key.as_str()),
        source: std::io::Error::other(e),
    })
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

async fn delete_quietly(store: &dyn ObjectStore, path: &Path) {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => tracing::warn!(path = %path, error = %e, "could not delete staging object"),
    }
}

/// fsyncs that [`sync_local_object`] runs at once, at most (on tokio's blocking pool). A key
/// of the usual depth (`datasets/<name>/<fp_hex>/<sha256>.parquet` under the root: five
/// paths) has all of them at once; a deeper key waits for a free one.
const SYNCS_AT_ONCE: usize = 8;

/// Makes the object `root/<key>` durable before its 201 (DESIGN.md section 2, invariant 3).
///
/// object_store's local backend (without its `fsync` option) renames a staged file into place
/// without flushing anything. Staging already flushed the file's bytes before the rename, so
/// the name never points at unflushed data; this flushes the file again (its metadata, and
/// the data of a key an earlier write moved into place and then failed before flushing),
/// and every directory from the file's parent up to and including `root`, so the new
/// directory entry and any directories created for it are on disk too.
///
/// These fsyncs do not depend on one another, so up to [`SYNCS_AT_ONCE`] run at the same
/// time, and all have returned before this does: on a disk where each fsync costs a cache
/// flush (1 to 7 ms each on the benchmark VM) they overlap instead of adding up.
///
/// # Errors
/// [`StoragedError::Io`] naming the path that could not be opened or synced (the one
/// nearest the file, when several could not).
pub async fn sync_local_object(root: &std::path::Path, key: &ObjectKey) -> Result<()> {
    let path = root.join(key.as_str());
    let mut paths = vec![path.clone()];
    let mut dir = path.parent();
    while let Some(current) = dir {
        paths.push(current.to_owned());
        if current == root {
            break;
        }
        dir = current.parent();
    }
    let syncs = paths.into_iter().map(|path| async move {
        let synced = tokio::task::spawn_blocking({
            let path = path.clone();
            move || std::fs::File::open(&path).and_then(|file| file.sync_all())
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
    results.into_iter().collect()
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
async fn local_path_conflict(root: &std::path::Path, key: &ObjectKey) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers_parse_to_one_get_range() {
        let part = |s| ByteRange::from_header(Some(s));
        assert_eq!(part("bytes=2-5"), ByteRange::Part(GetRange::Bounded(2..6)));
        assert_eq!(part("bytes=7-"), ByteRange::Part(GetRange::Offset(7)));
        assert_eq!(part("bytes=-3"), ByteRange::Part(GetRange::Suffix(3)));
        assert_eq!(part("bytes=0-1,4-5"), ByteRange::Whole);
        assert_eq!(part("items=0-1"), ByteRange::Whole);
        assert_eq!(ByteRange::from_header(None), ByteRange::Whole);
        for bad in [
            "bytes=5-2",
            "bytes=x-1",
            "bytes=-0",
            "bytes=",
            "bytes=1-2-3",
        ] {
            assert_eq!(part(bad), ByteRange::Malformed, "{bad}");
        }
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        let part = |s| ByteRange::from_header(Some(s));
        assert!(part("bytes=0-100").satisfiable(10));
        assert!(!part("bytes=10-").satisfiable(10));
        assert!(!part("bytes=10-20").satisfiable(10));
        assert!(part("bytes=-100").satisfiable(10));
        assert!(!part("bytes=-1").satisfiable(0));
        assert!(ByteRange::Whole.satisfiable(0));
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
        let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["b/1", "b/10", "b/2"]);
        assert_eq!(page.next_start_after.as_deref(), Some("b/2"));
        let page = store.list("b", Some("b/2"), 3).await.unwrap();
        let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["b/3", "ba/1"]);
        assert_eq!(page.next_start_after, None);
        assert!(store.list("a//", None, 3).await.unwrap().objects.is_empty());
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
        sync_local_object(root.path(), &deep).await.unwrap();

        // Nothing of this key exists below the root: 21 of its 22 paths fail.
        let missing = parse_key(&format!(
            "{}/gone.parquet",
            dirs.join("/").replace('d', "m")
        ))
        .unwrap();
        match sync_local_object(root.path(), &missing).await {
            Err(StoragedError::Io { op, path, .. }) => {
                assert_eq!(op, "fsync");
                assert_eq!(path, root.path().join(missing.as_str()));
            }
            other => panic!("expected the object's own fsync error, got {other:?}"),
        }
    }
}
