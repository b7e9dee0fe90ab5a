//! The storage the catalog runs over, and an in-memory implementation for tests.

use crate::StoreError;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use lakehouse_api::ObjectKey;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

/// Outcome of a create-only put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object did not exist and now holds the bytes.
    Created,
    /// The key already existed; nothing was written (storaged's 412 to `If-None-Match: *`).
    AlreadyExists,
}

/// One entry of [`ManifestStore::list_objects`]: what garbage collection needs to know of an
/// object (docs/decisions.md, "Garbage collection and retention").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The object's key.
    pub key: ObjectKey,
    /// Size in bytes.
    pub size: u64,
    /// When the object was last written, as the store reports it (storaged's LIST
    /// `last_modified`).
    pub last_modified: DateTime<Utc>,
}

impl StoredObject {
    /// An entry from a listing whose `last_modified` is RFC 3339 text (storaged's LIST). Text
    /// that does not parse is read as *now*, so the object counts as young and garbage
    /// collection keeps it: an unreadable age never makes an object deletable.
    pub fn from_listing(key: ObjectKey, size: u64, last_modified: &str) -> Self {
        let last_modified = DateTime::parse_from_rfc3339(last_modified)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        StoredObject {
            key,
            size,
            last_modified,
        }
    }
}

/// The object storage the catalog keeps its manifests in and checks objects against
/// (storaged in production, docs/contract.md section 6).
///
/// Keys are [`ObjectKey`]s; listings are by plain string prefix, ascending by key bytes.
pub trait ManifestStore: Send + Sync + 'static {
    /// Writes `bytes` at `key` only if nothing is there (`If-None-Match: *`). The write is
    /// durable once this returns [`PutOutcome::Created`].
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or does not answer; whether the write happened is
    /// then unknown.
    fn put_if_absent(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;

    /// The whole object at `key`, `None` when there is none.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or does not answer.
    fn get(
        &self,
        key: &ObjectKey,
    ) -> impl Future<Output = Result<Option<Bytes>, StoreError>> + Send;

    /// Bytes `range` of the object at `key` (clamped to its end), `None` when there is none
    /// (Parquet footers for the Iceberg metadata, docs/contract.md section 8).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or does not answer.
    fn get_range(
        &self,
        key: &ObjectKey,
        range: std::ops::Range<u64>,
    ) -> impl Future<Output = Result<Option<Bytes>, StoreError>> + Send;

    /// Every key that starts with `prefix` and sorts after `start_after` (when given),
    /// ascending; all pages.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or does not answer.
    fn list_keys(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> impl Future<Output = Result<Vec<ObjectKey>, StoreError>> + Send;

    /// The names of the "directories" right under `prefix` (which ends in `/`): for each key
    /// `<prefix><dir>/<rest>`, `<dir>` once, ascending (a listing with the delimiter `/`, so
    /// the cost is that of the directories, not of the keys below them).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or does not answer.
    fn list_dirs(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Size in bytes of the object at `key`, `None` when there is none.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or does not answer.
    fn object_size(
        &self,
        key: &ObjectKey,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// Succeeds when the store answers (`GET /readyz` of the service on top).
    ///
    /// # Errors
    /// [`StoreError`] when it does not.
    fn ready(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every object whose key starts with `prefix`, ascending, with size and last
    /// modification; all pages (garbage collection, docs/decisions.md, "Garbage collection and retention").
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or does not answer.
    fn list_objects(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<StoredObject>, StoreError>> + Send;

    /// Deletes the object at `key`: `true` when it existed, `false` when there was none
    /// (another collector deleted it first).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or does not answer; whether the delete happened is
    /// then unknown.
    fn delete(&self, key: &ObjectKey) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<S: ManifestStore> ManifestStore for Arc<S> {
    fn put_if_absent(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send {
        S::put_if_absent(self, key, bytes)
    }

    fn get(
        &self,
        key: &ObjectKey,
    ) -> impl Future<Output = Result<Option<Bytes>, StoreError>> + Send {
        S::get(self, key)
    }

    fn get_range(
        &self,
        key: &ObjectKey,
        range: std::ops::Range<u64>,
    ) -> impl Future<Output = Result<Option<Bytes>, StoreError>> + Send {
        S::get_range(self, key, range)
    }

    fn list_keys(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> impl Future<Output = Result<Vec<ObjectKey>, StoreError>> + Send {
        S::list_keys(self, prefix, start_after)
    }

    fn list_dirs(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        S::list_dirs(self, prefix)
    }

    fn object_size(
        &self,
        key: &ObjectKey,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        S::object_size(self, key)
    }

    fn ready(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        S::ready(self)
    }

    fn list_objects(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<StoredObject>, StoreError>> + Send {
        S::list_objects(self, prefix)
    }

    fn delete(&self, key: &ObjectKey) -> impl Future<Output = Result<bool, StoreError>> + Send {
        S::delete(self, key)
    }
}

/// A hook run (once) inside the next [`MemoryStore::put_if_absent`], just before the store
/// checks whether the key exists.
type PutHook = Box<dyn FnOnce(&mut BTreeMap<ObjectKey, Bytes>) + Send>;

#[derive(Default)]
struct Inner {
    objects: BTreeMap<ObjectKey, Bytes>,
    /// Last modification of each object written through [`MemoryStore::insert`] or a put;
    /// an object a hook wrote without one is listed as modified *now*.
    modified: HashMap<ObjectKey, DateTime<Utc>>,
    before_put: Vec<PutHook>,
    unavailable: bool,
}

/// An in-memory [`ManifestStore`] (a `Mutex<BTreeMap>`) for tests, with ways to simulate
/// another replica committing concurrently ([`MemoryStore::before_next_put`]) and an outage
/// ([`MemoryStore::set_unavailable`]).
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Calls of [`ManifestStore::get`] and listings so far ([`MemoryStore::reads`]).
    reads: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("objects", &self.lock().objects.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        let inner = self.lock();
        if inner.unavailable {
            return Err(StoreError::unavailable("memory store set unavailable"));
        }
        Ok(inner)
    }

    /// Writes `bytes` at `key`, replacing anything there (test setup: an uploaded object, a
    /// manifest another replica wrote, a corrupt file).
    pub fn insert(&self, key: ObjectKey, bytes: impl Into<Bytes>) {
        let mut inner = self.lock();
        inner.modified.insert(key.clone(), Utc::now());
        inner.objects.insert(key, bytes.into());
    }

    /// Removes `key`.
    pub fn remove(&self, key: &ObjectKey) {
        let mut inner = self.lock();
        inner.objects.remove(key);
        inner.modified.remove(key);
    }

    /// Sets the last modification time [`ManifestStore::list_objects`] reports for `key`
    /// (test setup: an object written long ago).
    pub fn set_last_modified(&self, key: &ObjectKey, at: DateTime<Utc>) {
        self.lock().modified.insert(key.clone(), at);
    }

    /// Every key starting with `prefix`, ascending.
    pub fn keys(&self, prefix: &str) -> Vec<ObjectKey> {
        self.lock()
            .objects
            .keys()
            .filter(|key| key.as_str().starts_with(prefix))
            .cloned()
            .collect()
    }

    /// The bytes at `key`, if any.
    pub fn bytes(&self, key: &ObjectKey) -> Option<Bytes> {
        self.lock().objects.get(key).cloned()
    }

    /// Runs `hook` on the store's map inside the next `put_if_absent`, after the caller read
    /// the store and before the key's existence is checked: a concurrent committer. Hooks
    /// queue up, one per put.
    pub fn before_next_put(
        &self,
        hook: impl FnOnce(&mut BTreeMap<ObjectKey, Bytes>) + Send + 'static,
    ) {
        self.lock().before_put.push(Box::new(hook));
    }

    /// How many whole-object GETs and listings the store has answered: what a test of the
    /// catalog's read cost counts.
    pub fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn count_read(&self) {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// While `true`, every operation fails with [`StoreError::Unavailable`].
    pub fn set_unavailable(&self, unavailable: bool) {
        self.lock().unavailable = unavailable;
    }
}

impl ManifestStore for MemoryStore {
    async fn put_if_absent(&self, key: &ObjectKey, bytes: Bytes) -> Result<PutOutcome, StoreError> {
        tokio::task::yield_now().await;
        let mut inner = self.check()?;
        if !inner.before_put.is_empty() {
            let hook = inner.before_put.remove(0);
            hook(&mut inner.objects);
        }
        if inner.objects.contains_key(key) {
            return Ok(PutOutcome::AlreadyExists);
        }
        inner.objects.insert(key.clone(), bytes);
        inner.modified.insert(key.clone(), Utc::now());
        Ok(PutOutcome::Created)
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>, StoreError> {
        tokio::task::yield_now().await;
        self.count_read();
        Ok(self.check()?.objects.get(key).cloned())
    }

    async fn get_range(
        &self,
        key: &ObjectKey,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Bytes>, StoreError> {
        tokio::task::yield_now().await;
        Ok(self.check()?.objects.get(key).map(|bytes| {
            let len = bytes.len() as u64;
            let (start, end) = (range.start.min(len), range.end.min(len));
            bytes.slice(start as usize..end.max(start) as usize)
        }))
    }

    async fn list_keys(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<ObjectKey>, StoreError> {
        tokio::task::yield_now().await;
        self.count_read();
        Ok(self
            .check()?
            .objects
            .keys()
            .filter(|key| key.as_str().starts_with(prefix))
            .filter(|key| start_after.is_none_or(|after| key.as_str() > after))
            .cloned()
            .collect())
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        tokio::task::yield_now().await;
        self.count_read();
        let dirs: std::collections::BTreeSet<String> = self
            .check()?
            .objects
            .keys()
            .filter_map(|key| key.as_str().strip_prefix(prefix))
            .filter_map(|rest| rest.split_once('/').map(|(dir, _)| dir.to_owned()))
            .collect();
        Ok(dirs.into_iter().collect())
    }

    async fn object_size(&self, key: &ObjectKey) -> Result<Option<u64>, StoreError> {
        tokio::task::yield_now().await;
        Ok(self
            .check()?
            .objects
            .get(key)
            .map(|bytes| bytes.len() as u64))
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.check().map(drop)
    }

    async fn list_objects(&self, prefix: &str) -> Result<Vec<StoredObject>, StoreError> {
        tokio::task::yield_now().await;
        let inner = self.check()?;
        let now = Utc::now();
        Ok(inner
            .objects
            .iter()
            .filter(|(key, _)| key.as_str().starts_with(prefix))
            .map(|(key, bytes)| StoredObject {
                key: key.clone(),
                size: bytes.len() as u64,
                last_modified: inner.modified.get(key).copied().unwrap_or(now),
            })
            .collect())
    }

    async fn delete(&self, key: &ObjectKey) -> Result<bool, StoreError> {
        tokio::task::yield_now().await;
        let mut inner = self.check()?;
        inner.modified.remove(key);
        Ok(inner.objects.remove(key).is_some())
    }
}
