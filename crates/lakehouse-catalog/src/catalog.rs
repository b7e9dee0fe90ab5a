//! The catalog: an in-memory index over the store's manifests, lookups, and `register`, the
//! commit protocol of DESIGN.md section 6.

use crate::{CatalogError, ManifestStore, PutOutcome, Result, RetentionPolicy, error_chain};
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use lakehouse_api::{
    DatasetListResponse, DatasetName, DatasetSummary, IngestMode, Manifest, ObjectKey, ObjectRef, Operation,
    SchemaDriftDetails, SchemaEvolution, VersionRegisterRequest,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

/// Prefix of every manifest key: `_catalog/datasets/`.
const CATALOG_PREFIX: &str = "_catalog/datasets/";

/// How many times `register` tries to create the next version when other committers keep
/// winning the race, before it gives up with [`CatalogError::Conflict`].
pub const MAX_COMMIT_ATTEMPTS: u32 = 16;

/// How many manifests [`Catalog::open`] loads concurrently.
const OPEN_CONCURRENCY: usize = 16;

/// Key prefix of dataset `name`'s manifests: `_catalog/datasets/<name>/`.
pub fn manifest_prefix(name: &DatasetName) -> String {
    format!("{CATALOG_PREFIX}{}/", name.as_str())
}

/// What [`Catalog::register`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterOutcome {
    /// The new version, or the latest one when `existing` is true.
    pub manifest: Arc<Manifest>,
    /// True when the latest version already was what the request asked for (DESIGN.md
    /// section 2, invariant 4): no version was written.
    pub existing: bool,
}

type Versions = BTreeMap<u64, Arc<Manifest>>;

/// The catalog of every dataset's versions over a [`ManifestStore`] (DESIGN.md section 6).
///
/// Lookups are served from an in-memory index (`name -> version -> manifest`) that
/// [`Catalog::open`] rebuilds from the store; the `fetch_*` lookups and [`Catalog::register`]
/// first load versions other replicas wrote since. Manifests are immutable once written, so
/// the index only ever grows.
pub struct Catalog<S> {
    pub(crate) store: S,
    index: RwLock<BTreeMap<DatasetName, Versions>>,
    /// One commit lock per dataset: committers in this process queue instead of racing.
    /// Garbage collection takes it too (see `gc.rs`).
    commit_locks: Mutex<HashMap<DatasetName, Arc<tokio::sync::Mutex<()>>>>,
    /// Which old versions are still served (docs/decisions.md, "Garbage collection and retention"); [`RetentionPolicy::KEEP_ALL`] unless
    /// [`Catalog::with_retention`] says otherwise.
    pub(crate) retention: RetentionPolicy,
    /// `<base>` of the Iceberg table locations (DESIGN.md section 8), `None`: no Iceberg
    /// metadata is written ([`Catalog::with_table_base`]).
    pub(crate) table_base: Option<String>,
    /// Per dataset, the highest version whose Iceberg metadata this process knows durable.
    pub(crate) durable: Mutex<HashMap<DatasetName, u64>>,
}

impl<S> std::fmt::Debug for Catalog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("datasets", &self.read_index().len())
            .finish_non_exhaustive()
    }
}

impl<S: ManifestStore> Catalog<S> {
    /// Opens the catalog over `store`: lists `_catalog/datasets/` and loads every manifest
    /// into the index (DESIGN.md section 6, "rebuilt from storaged at start").
    ///
    /// # Errors
    /// [`CatalogError::CorruptManifest`] naming the key of any manifest that does not parse,
    /// does not match its key or its own fingerprint, or a stray key under the prefix: a
    /// broken catalog stops the start instead of being silently skipped.
    /// [`CatalogError::Store`] when the store fails.
    pub async fn open(store: S) -> Result<Self> {
        let keys = store.list_keys(CATALOG_PREFIX, None).await?;
        let catalog = Catalog {
            store,
            index: RwLock::new(BTreeMap::new()),
            commit_locks: Mutex::new(HashMap::new()),
            retention: RetentionPolicy::KEEP_ALL,
            table_base: None,
            durable: Mutex::new(HashMap::new()),
        };
        let located = keys
            .into_iter()
            .map(|key| {
                let (name, version) = parse_manifest_key(&key)?;
                Ok((key, name, version))
            })
            .collect::<Result<Vec<_>>>()?;
        let manifests: Vec<Manifest> = futures::stream::iter(located)
            .map(|(key, name, version)| {
                let catalog = &catalog;
                async move { catalog.load(&key, &name, version).await }
            })
            .buffer_unordered(OPEN_CONCURRENCY)
            .try_filter_map(|manifest| async move { Ok(manifest) })
            .try_collect()
            .await?;
        let count = manifests.len();
        catalog.insert_all(manifests);
        tracing::info!(
            datasets = catalog.read_index().len(),
            versions = count,
            "catalog index rebuilt"
        );
        Ok(catalog)
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The catalog with retention `policy` (docs/decisions.md, "Garbage collection and retention"): versions past it answer
    /// [`CatalogError::Gone`] and their objects become garbage collection candidates.
    pub fn with_retention(mut self, policy: RetentionPolicy) -> Self {
        self.retention = policy;
        self
    }

    /// The catalog writing each version's Iceberg metadata under the table locations
    /// `<base>/datasets/<name>` (DESIGN.md section 8): `file:///<root>`, `s3://<bucket>` or
    /// `memory://`. A register answers only once that metadata is durable.
    pub fn with_table_base(mut self, base: impl Into<String>) -> Self {
        self.table_base = Some(base.into());
        self
    }

    /// `<base>` of the table locations, when set.
    pub fn table_base(&self) -> Option<&str> {
        self.table_base.as_deref()
    }

    /// The retention policy in force.
    pub fn retention(&self) -> RetentionPolicy {
        self.retention
    }

    /// Whether `manifest` is retained now, given the index's latest version of its dataset
    /// (no store access; see [`RetentionPolicy`]).
    pub fn is_retained(&self, manifest: &Manifest) -> bool {
        let latest = self
            .latest(&manifest.name)
            .map_or(manifest.version, |latest| latest.version);
        self.retention.is_retained(manifest, latest, Utc::now())
    }

    /// Latest version of `name` in the index (no store access).
    pub fn latest(&self, name: &DatasetName) -> Option<Arc<Manifest>> {
        self.read_index()
            .get(name)
            .and_then(|versions| versions.values().next_back().cloned())
    }

    /// Version `version` of `name` in the index (no store access).
    pub fn version(&self, name: &DatasetName, version: u64) -> Option<Arc<Manifest>> {
        self.read_index()
            .get(name)
            .and_then(|versions| versions.get(&version).cloned())
    }

    /// Every version of `name` in the index, ascending; `None` when the dataset is unknown.
    pub fn versions(&self, name: &DatasetName) -> Option<Vec<Arc<Manifest>>> {
        self.read_index()
            .get(name)
            .map(|versions| versions.values().cloned().collect())
    }

    /// One page of datasets from the index whose names start with `prefix`, names
    /// ascending, after `cursor` (exclusive) when given, at most `limit` (at least 1).
    /// `next_cursor` is the page's last name when more follow.
    pub fn list(&self, prefix: &str, limit: usize, cursor: Option<&str>) -> DatasetListResponse {
        let limit = limit.max(1);
        let index = self.read_index();
        let mut page = index
            .iter()
            .filter(|(name, _)| name.as_str().starts_with(prefix))
            .filter(|(name, _)| cursor.is_none_or(|cursor| name.as_str() > cursor))
            .filter_map(|(_, versions)| versions.values().next_back())
            .map(|latest| DatasetSummary {
                name: latest.name.clone(),
                latest_version: latest.version,
                schema_fingerprint: latest.schema_fingerprint.clone(),
                row_count: latest.row_count,
                updated_at: latest.created_at.clone(),
            });
        let datasets: Vec<DatasetSummary> = page.by_ref().take(limit).collect();
        let more = page.next().is_some();
        DatasetListResponse {
            next_cursor: more
                .then(|| datasets.last().map(|d| d.name.to_string()))
                .flatten(),
            datasets,
        }
    }

    /// Loads the versions of `name` that the store holds beyond the index's latest (another
    /// replica wrote them) and returns how many there were.
    ///
    /// # Errors
    /// [`CatalogError::Store`] when the store fails; [`CatalogError::CorruptManifest`] for a
    /// bad manifest.
    pub async fn refresh(&self, name: &DatasetName) -> Result<usize> {
        let after = self
            .latest(name)
            .map(|latest| ObjectKey::manifest(name, latest.version).to_string());
        let keys = self
            .store
            .list_keys(&manifest_prefix(name), after.as_deref())
            .await?;
        let mut loaded = Vec::with_capacity(keys.len());
        for key in keys {
            let (key_name, version) = parse_manifest_key(&key)?;
            if &key_name != name {
                continue;
            }
            if let Some(manifest) = self.load(&key, name, version).await? {
                loaded.push(manifest);
            }
        }
        let count = loaded.len();
        self.insert_all(loaded);
        Ok(count)
    }

    /// Loads every manifest the store holds that the index does not (versions and whole
    /// datasets other replicas wrote) and returns how many there were. One listing of
    /// `_catalog/datasets/`, then only the new manifests are read. catalogd runs it every
    /// `refresh_interval_ms`, so `GET /datasets` shows other replicas' datasets too.
    ///
    /// # Errors
    /// [`CatalogError::Store`] when the store fails; [`CatalogError::CorruptManifest`] for a
    /// bad manifest or stray key (the index keeps everything loaded before).
    pub async fn refresh_all(&self) -> Result<usize> {
        let keys = self.store.list_keys(CATALOG_PREFIX, None).await?;
        let mut missing = Vec::new();
        for key in keys {
            let (name, version) = parse_manifest_key(&key)?;
            if self.version(&name, version).is_none() {
                missing.push((key, name, version));
            }
        }
        let manifests: Vec<Manifest> = futures::stream::iter(missing)
            .map(|(key, name, version)| async move { self.load(&key, &name, version).await })
            .buffer_unordered(OPEN_CONCURRENCY)
            .try_filter_map(|manifest| async move { Ok(manifest) })
            .try_collect()
            .await?;
        let count = manifests.len();
        self.insert_all(manifests);
        Ok(count)
    }

    /// The latest version of `name`, after loading versions other replicas wrote. When the
    /// store does not answer, the index's latest is served (logged), so reads survive a
    /// storage outage.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when the dataset has no version; the refresh's error when
    /// the store fails and the index does not know the dataset either.
    pub async fn fetch_latest(&self, name: &DatasetName) -> Result<Arc<Manifest>> {
        self.refresh_or_stale(name).await?;
        self.latest(name)
            .ok_or_else(|| CatalogError::NotFound { name: name.clone() })
    }

    /// Version `version` of `name` (time travel); the store is read only when the index
    /// misses, or first when a retention policy is set (retention counts from the latest
    /// version, which another replica may have written).
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when the dataset has no version,
    /// [`CatalogError::VersionNotFound`] when it has others; [`CatalogError::Gone`] when the
    /// version is past retention; [`CatalogError::Store`] when the index misses and the store
    /// fails.
    pub async fn fetch_version(&self, name: &DatasetName, version: u64) -> Result<Arc<Manifest>> {
        if !self.retention.keeps_all() {
            self.refresh_or_stale(name).await?;
        }
        let manifest = self.fetch_version_any(name, version).await?;
        if self.is_retained(&manifest) {
            Ok(manifest)
        } else {
            Err(CatalogError::Gone {
                name: name.clone(),
                version,
            })
        }
    }

    /// [`Catalog::fetch_version`] without the retention check.
    async fn fetch_version_any(&self, name: &DatasetName, version: u64) -> Result<Arc<Manifest>> {
        if let Some(manifest) = self.version(name, version) {
            return Ok(manifest);
        }
        self.refresh(name).await?;
        if let Some(manifest) = self.version(name, version) {
            return Ok(manifest);
        }
        if self.latest(name).is_some() {
            Err(CatalogError::VersionNotFound {
                name: name.clone(),
                version,
            })
        } else {
            Err(CatalogError::NotFound { name: name.clone() })
        }
    }

    /// Every version of `name`, ascending, after loading versions other replicas wrote
    /// (falling back to the index when the store does not answer, like
    /// [`Catalog::fetch_latest`]).
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when the dataset has no version.
    pub async fn fetch_versions(&self, name: &DatasetName) -> Result<Vec<Arc<Manifest>>> {
        self.refresh_or_stale(name).await?;
        self.versions(name)
            .ok_or_else(|| CatalogError::NotFound { name: name.clone() })
    }

    async fn refresh_or_stale(&self, name: &DatasetName) -> Result<()> {
        match self.refresh(name).await {
            Ok(_) => Ok(()),
            Err(CatalogError::Store(error)) if self.latest(name).is_some() => {
                tracing::warn!(dataset = %name, error = %error_chain(&error), "store unavailable; serving the index");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Registers a version of `name`: the atomic schema gate of DESIGN.md sections 2 and 6.
    ///
    /// 1. Validates the request: the fingerprint is the schema's, there are objects, each key
    ///    is `datasets/<name>/<fp_hex>/.../<sha256>.parquet` with its own `sha256`.
    /// 2. Serializes with other committers of `name` in this process (and with garbage
    ///    collection of `name`), checks that the store holds each object with the stated
    ///    size (so a manifest never points at an incomplete or collected object, invariant 7)
    ///    and loads versions other replicas wrote.
    /// 3. A different fingerprint than the latest version's is drift: nothing is written
    ///    (invariant 2); unless the request asks for `schema_evolution: add_columns` and its
    ///    schema is the latest one's plus new columns at the end ([`schema_gate`]).
    /// 4. When the latest version already is what the request asks for (`replace`: exactly
    ///    these objects; `append`: holds them all), answers it with `existing: true`
    ///    (invariant 4).
    /// 5. Otherwise writes version latest+1 create-only; when another replica wrote that
    ///    version first, loads it and goes back to 3.
    ///
    /// With `dry_run`, steps 1, 3 and 4 only, and the version step 5 would write is
    /// answered unwritten ([`Catalog::register_dry_run`]).
    ///
    /// # Errors
    /// [`CatalogError::FingerprintMismatch`], [`CatalogError::InvalidRequest`],
    /// [`CatalogError::InvalidObject`] for a bad request; [`CatalogError::SchemaDrift`] on
    /// drift; [`CatalogError::Conflict`] after [`MAX_COMMIT_ATTEMPTS`] lost races;
    /// [`CatalogError::Store`] and [`CatalogError::CorruptManifest`] from the store;
    /// [`CatalogError::Store`] or [`CatalogError::TableMetadata`] when the Iceberg metadata
    /// of the latest version (before the commit) or of the new one (after it: the version
    /// stays committed, the client's retry answers `existing: true`) cannot be written.
    pub async fn register(
        &self,
        name: &DatasetName,
        request: VersionRegisterRequest,
    ) -> Result<RegisterOutcome> {
        self.validate(name, &request)?;
        if request.dry_run {
            return self.register_dry_run(name, &request).await;
        }
        let lock = self.commit_lock(name);
        let _guard = lock.lock().await;
        // Under the lock: garbage collection of `name` holds it while it decides and deletes,
        // so no object can vanish between this check and the commit below (docs/decisions.md, "Garbage collection and retention").
        self.check_objects_stored(&request).await?;
        self.refresh(name).await?;
        if let Some(latest) = self.latest(name) {
            // Heal the latest version's Iceberg metadata before the next commit (DESIGN.md
            // section 8). A failure fails this register before it commits: so every version
            // but the latest always has its metadata, and the latest gets it by its own
            // commit, the next one, a table load or a restart.
            self.ensure_table_metadata(name, latest.version)
                .await
                .map_err(|error| match error {
                    CatalogError::Store(_) | CatalogError::TableMetadata { .. } => error,
                    // Not the request's fault (an object of the latest version is missing):
                    // a 503 like any other failed heal, not a 400 about the request.
                    other => CatalogError::TableMetadata {
                        name: name.clone(),
                        version: latest.version,
                        reason: error_chain(&other),
                    },
                })?;
        }
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let latest = self.latest(name);
            if let Some(latest) = &latest {
                schema_gate(latest, &request)?;
                if let Some(key) = rejects_conflict(latest, &request) {
                    return Err(CatalogError::InvalidRequest(format!(
                        "version {} already holds {key} with other set-aside records; \
                         append cannot hold it twice (upload it with mode=replace)",
                        latest.version
                    )));
                }
                if already_holds(latest, &request) {
                    self.ensure_table_metadata(name, latest.version).await?;
                    return Ok(RegisterOutcome {
                        manifest: Arc::clone(latest),
                        existing: true,
                    });
                }
            }
            if let Some(key) = replaced_not_live(latest.as_deref(), &request) {
                return Err(CatalogError::CompactionConflict {
                    name: name.clone(),
                    key: key.clone(),
                });
            }
            let manifest = next_manifest(name, latest.as_deref(), &request);
            let key = ObjectKey::manifest(name, manifest.version);
            let mut json = serde_json::to_vec_pretty(&manifest).map_err(CatalogError::Encode)?;
            json.push(b'\n');
            match self.store.put_if_absent(&key, Bytes::from(json)).await? {
                PutOutcome::Created => {
                    let manifest = Arc::new(manifest);
                    self.insert(Arc::clone(&manifest));
                    tracing::info!(dataset = %name, version = manifest.version, objects = manifest.objects.len(), "version registered");
                    // A 200 means the Iceberg metadata is durable too: on failure the
                    // version stays committed and the client's retry (`existing: true`)
                    // heals it.
                    self.ensure_table_metadata(name, manifest.version).await?;
                    return Ok(RegisterOutcome {
                        manifest,
                        existing: false,
                    });
                }
                PutOutcome::AlreadyExists => {
                    tracing::info!(dataset = %name, version = manifest.version, "another committer wrote this version first; re-validating");
                    if let Some(theirs) = self.load(&key, name, manifest.version).await? {
                        self.insert_all([theirs]);
                    }
                    self.refresh(name).await?;
                }
            }
        }
        Err(CatalogError::Conflict {
            name: name.clone(),
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }

    /// [`Catalog::register`] of a request with `dry_run`: the same validation and schema
    /// gate against the latest version (versions other replicas wrote included), answering
    /// the version a register would make now, or the latest one with `existing: true`;
    /// nothing is written (no manifest, no Iceberg metadata) and the objects need not be
    /// stored yet (ingestd's `dry_run`, DESIGN.md section 6). Another committer may of
    /// course make that version number taken by the time a real register comes.
    async fn register_dry_run(
        &self,
        name: &DatasetName,
        request: &VersionRegisterRequest,
    ) -> Result<RegisterOutcome> {
        self.refresh(name).await?;
        let latest = self.latest(name);
        if let Some(latest) = &latest {
            schema_gate(latest, request)?;
            if already_holds(latest, request) {
                return Ok(RegisterOutcome {
                    manifest: Arc::clone(latest),
                    existing: true,
                });
            }
        }
        if let Some(key) = replaced_not_live(latest.as_deref(), request) {
            return Err(CatalogError::CompactionConflict {
                name: name.clone(),
                key: key.clone(),
            });
        }
        Ok(RegisterOutcome {
            manifest: Arc::new(next_manifest(name, latest.as_deref(), request)),
            existing: false,
        })
    }

    /// Step 1 of [`Catalog::register`].
    fn validate(&self, name: &DatasetName, request: &VersionRegisterRequest) -> Result<()> {
        let computed = request.schema.fingerprint();
        if computed != request.schema_fingerprint {
            return Err(CatalogError::FingerprintMismatch {
                declared: request.schema_fingerprint.clone(),
                computed,
            });
        }
        if request.objects.is_empty() {
            return Err(CatalogError::InvalidRequest(
                "objects must name at least one object".into(),
            ));
        }
        let prefix = format!("{}/", ObjectKey::parquet_dir(name, &computed));
        let mut seen = HashSet::new();
        for object in &request.objects {
            let key = object.key.as_str();
            if !seen.insert(key) {
                return Err(CatalogError::InvalidRequest(format!(
                    "object {key} is listed twice"
                )));
            }
            let file = format!("{}.parquet", object.sha256.as_str());
            let in_layout = key.strip_prefix(&prefix) == Some(file.as_str());
            if !in_layout {
                return Err(CatalogError::InvalidObject {
                    key: object.key.clone(),
                    reason: format!("key must be {prefix}{file} (DESIGN.md section 5)"),
                });
            }
            if let Some(rejects) = &object.rejects {
                let expected = ObjectKey::rejects_object(name, &rejects.sha256);
                if rejects.key != expected {
                    return Err(CatalogError::InvalidObject {
                        key: rejects.key.clone(),
                        reason: format!("a rejects key must be {expected} (DESIGN.md section 3)"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Step 2 of [`Catalog::register`]: every object is stored with the stated size. Runs
    /// under the dataset's commit lock.
    async fn check_objects_stored(&self, request: &VersionRegisterRequest) -> Result<()> {
        let mut stated: Vec<(&ObjectKey, u64)> = Vec::with_capacity(request.objects.len());
        for object in &request.objects {
            stated.push((&object.key, object.size));
            if let Some(rejects) = &object.rejects {
                stated.push((&rejects.key, rejects.size));
            }
        }
        for (key, stated_size) in stated {
            match self.store.object_size(key).await? {
                Some(size) if size == stated_size => {}
                Some(size) => {
                    return Err(CatalogError::InvalidObject {
                        key: key.clone(),
                        reason: format!(
                            "stored size is {size} bytes, the request says {stated_size}"
                        ),
                    });
                }
                None => {
                    return Err(CatalogError::InvalidObject {
                        key: key.clone(),
                        reason: "no such object in storage".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Reads and checks the manifest at `key`, expected to be `version` of `name`. `None`
    /// when it vanished since it was listed.
    async fn load(
        &self,
        key: &ObjectKey,
        name: &DatasetName,
        version: u64,
    ) -> Result<Option<Manifest>> {
        let Some(bytes) = self.store.get(key).await? else {
            return Ok(None);
        };
        let corrupt = |reason: String| CatalogError::CorruptManifest {
            key: key.to_string(),
            reason,
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not a manifest: {e}")))?;
        if &manifest.name != name || manifest.version != version {
            return Err(corrupt(format!(
                "holds version {} of {}",
                manifest.version, manifest.name
            )));
        }
        let computed = manifest.schema.fingerprint();
        if manifest.schema_fingerprint != computed {
            return Err(corrupt(format!(
                "schema_fingerprint {} is not its schema's ({computed})",
                manifest.schema_fingerprint
            )));
        }
        Ok(Some(manifest))
    }

    fn insert(&self, manifest: Arc<Manifest>) {
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        index
            .entry(manifest.name.clone())
            .or_default()
            .entry(manifest.version)
            .or_insert(manifest);
    }

    fn insert_all(&self, manifests: impl IntoIterator<Item = Manifest>) {
        for manifest in manifests {
            self.insert(Arc::new(manifest));
        }
    }

    /// The commit lock of `name`, shared by [`Catalog::register`] and garbage collection.
    pub(crate) fn commit_lock(&self, name: &DatasetName) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.commit_locks.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(locks.entry(name.clone()).or_default())
    }
}

impl<S> Catalog<S> {
    /// Every dataset name in the index, ascending.
    pub fn dataset_names(&self) -> Vec<DatasetName> {
        self.read_index().keys().cloned().collect()
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<DatasetName, Versions>> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// `_catalog/datasets/<name>/<20 digits>.json` -> `(name, version)`.
fn parse_manifest_key(key: &ObjectKey) -> Result<(DatasetName, u64)> {
    let corrupt = |reason: &str| CatalogError::CorruptManifest {
        key: key.to_string(),
        reason: reason.to_owned(),
    };
    let rest = key
        .as_str()
        .strip_prefix(CATALOG_PREFIX)
        .ok_or_else(|| corrupt("not under _catalog/datasets/"))?;
    let (name, file) = rest
        .split_once('/')
        .ok_or_else(|| corrupt("not _catalog/datasets/<name>/<version>.json"))?;
    let name = DatasetName::new(name).map_err(|_| corrupt("not a valid dataset name"))?;
    let digits = file
        .strip_suffix(".json")
        .filter(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| corrupt("file name is not <version as 20 digits>.json"))?;
    let version = digits
        .parse::<u64>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| corrupt("version is not a number from 1 to 2^64-1"))?;
    Ok((name, version))
}

/// Step 3 of [`Catalog::register`], the schema gate (DESIGN.md sections 2, 3 and 6): the
/// request's schema must be the latest version's, or, with `schema_evolution: add_columns`,
/// the latest one's fields in order followed by new columns ([`Schema::adds_columns_to`]).
/// Checked under the commit, against the latest version, so of two racing evolutions that
/// add different columns only the first to commit passes.
///
/// # Errors
/// [`CatalogError::SchemaDrift`] otherwise; `evolvable` when the option would have let it
/// through.
///
/// [`Schema::adds_columns_to`]: lakehouse_api::Schema::adds_columns_to
fn schema_gate(latest: &Manifest, request: &VersionRegisterRequest) -> Result<()> {
    if latest.schema_fingerprint == request.schema_fingerprint {
        return Ok(());
    }
    let adds_columns = request.schema.adds_columns_to(&latest.schema);
    match request.schema_evolution {
        Some(SchemaEvolution::AddColumns) if adds_columns => Ok(()),
        evolution => Err(CatalogError::SchemaDrift {
            details: Box::new(SchemaDriftDetails::between(&latest.schema, &request.schema)),
            evolvable: adds_columns && evolution.is_none(),
        }),
    }
}

/// Invariant 4: `replace` asks for exactly these objects, `append` for a version holding them.
fn already_holds(latest: &Manifest, request: &VersionRegisterRequest) -> bool {
    let held = || latest.objects.iter().map(identity);
    let asked = || request.objects.iter().map(identity);
    if !request.replaces.is_empty() {
        let keys: HashSet<&ObjectKey> = latest.objects.iter().map(|o| &o.key).collect();
        let held: HashSet<_> = held().collect();
        return asked().all(|object| held.contains(&object))
            && request.replaces.iter().all(|key| !keys.contains(key));
    }
    match request.mode {
        IngestMode::Replace => held().eq(asked()),
        IngestMode::Append => {
            let held: HashSet<_> = held().collect();
            asked().all(|object| held.contains(&object))
        }
    }
}

/// What makes two object references the same: the data object and its rejects object (two
/// uploads that differ only in the records they set aside write the same Parquet).
fn identity(object: &ObjectRef) -> (&ObjectKey, Option<&ObjectKey>) {
    (&object.key, object.rejects.as_ref().map(|r| &r.key))
}

/// An object an append asks for whose data the latest version already holds with other
/// rejects: appending it again would list its rows twice, and keeping the old entry would
/// leave the new rejects unreferenced, so the register is refused (nothing written).
fn rejects_conflict<'a>(
    latest: &'a Manifest,
    request: &VersionRegisterRequest,
) -> Option<&'a ObjectKey> {
    if request.mode != IngestMode::Append {
        return None;
    }
    request.objects.iter().find_map(|asked| {
        latest
            .objects
            .iter()
            .find(|held| held.key == asked.key && identity(held) != identity(asked))
            .map(|held| &held.key)
    })
}

/// Step 5 of [`Catalog::register`]: version latest+1 (or 1).
fn next_manifest(
    name: &DatasetName,
    latest: Option<&Manifest>,
    request: &VersionRegisterRequest,
) -> Manifest {
    let operation = operation_of(request);
    let objects: Vec<ObjectRef> = match (operation, latest) {
        (Operation::Append, Some(latest)) => {
            let held: HashSet<&ObjectKey> = latest.objects.iter().map(|o| &o.key).collect();
            let new = request.objects.iter().filter(|o| !held.contains(&o.key));
            latest.objects.iter().chain(new).cloned().collect()
        }
        (Operation::Compact, Some(latest)) => compacted(latest, request),
        _ => request.objects.clone(),
    };
    Manifest {
        name: name.clone(),
        version: latest.map_or(1, |latest| latest.version + 1),
        schema_fingerprint: request.schema_fingerprint.clone(),
        schema: request.schema.clone(),
        row_count: objects.iter().map(|o| o.row_count).sum(),
        objects,
        created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        inference_version: request.inference_version,
        options: request.options.clone(),
        source: request.source.clone(),
        columns: request.columns.clone(),
        operation: Some(operation),
    }
}

/// The operation a register request makes: `compact` when it names objects it replaces,
/// else its ingest mode.
fn operation_of(request: &VersionRegisterRequest) -> Operation {
    match request.mode {
        _ if !request.replaces.is_empty() => Operation::Compact,
        IngestMode::Replace => Operation::Replace,
        IngestMode::Append => Operation::Append,
    }
}

/// A compaction's objects (docs/contract.md section 10): the latest version's objects in
/// order, the first replaced one's place taking the compacted objects and the other replaced
/// ones dropped, so rows keep their order when the replaced files were contiguous.
fn compacted(latest: &Manifest, request: &VersionRegisterRequest) -> Vec<ObjectRef> {
    let replaced: HashSet<&ObjectKey> = request.replaces.iter().collect();
    let held: HashSet<&ObjectKey> = latest.objects.iter().map(|o| &o.key).collect();
    let mut out = Vec::with_capacity(latest.objects.len() + request.objects.len());
    let mut placed = false;
    for object in &latest.objects {
        if replaced.contains(&object.key) {
            if !placed {
                out.extend(
                    request
                        .objects
                        .iter()
                        .filter(|o| !held.contains(&o.key))
                        .cloned(),
                );
                placed = true;
            }
        } else {
            out.push(object.clone());
        }
    }
    out
}

/// A compaction may commit only while every object it replaces is live in `latest`
/// (docs/contract.md section 10): the first one that is not.
fn replaced_not_live<'a>(
    latest: Option<&Manifest>,
    request: &'a VersionRegisterRequest,
) -> Option<&'a ObjectKey> {
    let held: HashSet<&ObjectKey> = latest
        .map(|latest| latest.objects.iter().map(|o| &o.key).collect())
        .unwrap_or_default();
    request.replaces.iter().find(|key| !held.contains(key))
}
