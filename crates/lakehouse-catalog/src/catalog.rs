//! The catalog: an in-memory index over the store's version records, lookups, and the
//! loading of versions other replicas wrote (docs/contract.md sections 6 and 10).

use crate::history::History;
use crate::record::{
    CHECKPOINT_INTERVAL, Checkpoint, VersionRecord, checkpoint_key, checkpoint_prefix,
};
use crate::{CatalogError, ManifestStore, PutOutcome, Result, RetentionPolicy, error_chain};
use bytes::Bytes;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use lakehouse_api::{
    DatasetListResponse, DatasetName, DatasetSummary, Manifest, ObjectKey, Source, VersionSummary,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

/// Prefix of every version record: `_catalog/datasets/`.
pub(crate) const CATALOG_PREFIX: &str = "_catalog/datasets/";

/// How many records or datasets are read concurrently.
const READ_CONCURRENCY: usize = 16;

/// How many materialized older versions are kept for time travel.
const VERSION_CACHE: usize = 32;

/// Key prefix of dataset `name`'s version records: `_catalog/datasets/<name>/`.
pub fn manifest_prefix(name: &DatasetName) -> String {
    format!("{CATALOG_PREFIX}{}/", name.as_str())
}

/// The catalog of every dataset's versions over a [`ManifestStore`] (docs/contract.md
/// sections 6 and 10).
///
/// Lookups are served from an in-memory index of each dataset's [`History`]: the latest
/// version materialized, and the records loaded so far. [`Catalog::open`] reads each
/// dataset's latest checkpoint and the records after it; the `fetch_*` lookups and
/// [`Catalog::register`] first read the records other replicas wrote since (one GET of the
/// next version's key when there are none).
pub struct Catalog<S> {
    pub(crate) store: S,
    index: RwLock<BTreeMap<DatasetName, History>>,
    /// Older versions materialized for time travel, the most recent [`VERSION_CACHE`].
    cache: Mutex<Vec<Arc<Manifest>>>,
    /// One commit lock per dataset: committers in this process queue instead of racing.
    /// Garbage collection takes it too (see `gc.rs`).
    commit_locks: Mutex<HashMap<DatasetName, Arc<tokio::sync::Mutex<()>>>>,
    /// Which old versions are still served (docs/decisions.md, "Garbage collection and
    /// retention"); [`RetentionPolicy::KEEP_ALL`] unless [`Catalog::with_retention`] says
    /// otherwise.
    pub(crate) retention: RetentionPolicy,
    /// `<base>` of the Iceberg table locations (docs/contract.md section 8), `None`: no
    /// Iceberg metadata is written ([`Catalog::with_table_base`]).
    pub(crate) table_base: Option<String>,
    /// Bounds of the Iceberg metadata (docs/contract.md section 10).
    pub(crate) table_config: lakehouse_iceberg::TableConfig,
    /// Per dataset, the Iceberg table at the highest version this process knows durable.
    pub(crate) tables: Mutex<HashMap<DatasetName, Arc<lakehouse_iceberg::TableState>>>,
}

impl<S> std::fmt::Debug for Catalog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("datasets", &self.read_index().len())
            .finish_non_exhaustive()
    }
}

impl<S: ManifestStore> Catalog<S> {
    /// Opens the catalog over `store`: lists the datasets under `_catalog/datasets/` (one
    /// listing with a delimiter) and loads each one's latest checkpoint and the records
    /// after it (docs/contract.md section 10).
    ///
    /// # Errors
    /// [`CatalogError::CorruptManifest`] naming the key of any record that does not parse,
    /// does not match its key or its own fingerprint, or a stray key under the prefix: a
    /// broken catalog stops the start instead of being silently skipped.
    /// [`CatalogError::Store`] when the store fails.
    pub async fn open(store: S) -> Result<Self> {
        let catalog = Catalog {
            store,
            index: RwLock::new(BTreeMap::new()),
            cache: Mutex::new(Vec::new()),
            commit_locks: Mutex::new(HashMap::new()),
            retention: RetentionPolicy::KEEP_ALL,
            table_base: None,
            table_config: lakehouse_iceberg::TableConfig::default(),
            tables: Mutex::new(HashMap::new()),
        };
        let names = catalog.dataset_dirs().await?;
        let loaded: Vec<History> = futures::stream::iter(names)
            .map(|name| {
                let catalog = &catalog;
                async move { catalog.load_history(&name).await }
            })
            .buffer_unordered(READ_CONCURRENCY)
            .try_filter_map(|history| async move { Ok(history) })
            .try_collect()
            .await?;
        let count: u64 = loaded.iter().map(|h| h.latest().version).sum();
        {
            let mut index = catalog.write_index();
            for history in loaded {
                index.insert(history.latest().name.clone(), history);
            }
        }
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

    /// The catalog with retention `policy` (docs/decisions.md, "Garbage collection and
    /// retention"): versions past it answer [`CatalogError::Gone`] and their objects become
    /// garbage collection candidates.
    pub fn with_retention(mut self, policy: RetentionPolicy) -> Self {
        self.retention = policy;
        self
    }

    /// The catalog writing each version's Iceberg metadata under the table locations
    /// `<base>/datasets/<name>` (docs/contract.md section 8): `file:///<root>`,
    /// `s3://<bucket>` or `memory://`. A register answers only once that metadata is durable.
    pub fn with_table_base(mut self, base: impl Into<String>) -> Self {
        self.table_base = Some(base.into());
        self
    }

    /// The catalog bounding its Iceberg metadata by `config` (`manifest_merge_count`,
    /// `iceberg_max_snapshots`; docs/contract.md section 10).
    pub fn with_table_config(mut self, config: lakehouse_iceberg::TableConfig) -> Self {
        self.table_config = config;
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
        self.is_version_retained(&manifest.name, manifest.version, &manifest.created_at)
    }

    /// Whether version `version` of `name`, committed at `created_at`, is retained now: by
    /// the retention policy, and not part of a dataset dropped since (docs/contract.md
    /// section 14).
    pub fn is_version_retained(&self, name: &DatasetName, version: u64, created_at: &str) -> bool {
        let latest = self.latest(name).map_or(version, |latest| latest.version);
        version >= self.first_live(name)
            && self
                .retention
                .is_retained_at(version, created_at, latest, Utc::now())
    }

    /// The first version of the dataset now under `name`: the one after its latest
    /// tombstone (1 when it was never dropped; past the latest while it is dropped).
    pub(crate) fn first_live(&self, name: &DatasetName) -> u64 {
        self.read_index()
            .get(name)
            .and_then(History::last_drop)
            .map_or(1, |drop| drop + 1)
    }

    /// Latest version of `name` in the index (no store access); `None` when it is unknown
    /// or dropped.
    pub fn latest(&self, name: &DatasetName) -> Option<Arc<Manifest>> {
        self.read_index()
            .get(name)
            .filter(|history| !history.is_dropped())
            .map(|history| Arc::clone(history.latest()))
    }

    /// Latest version of `name` in the index, a tombstone included (no store access).
    pub(crate) fn latest_any(&self, name: &DatasetName) -> Option<Arc<Manifest>> {
        self.read_index()
            .get(name)
            .map(|history| Arc::clone(history.latest()))
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
            .filter(|(_, history)| !history.is_dropped())
            .map(|(_, history)| history.latest())
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
    /// replica wrote them; a dataset the index does not know is loaded whole, as at open)
    /// and returns how many there were. Costs one GET of the next version's key when there
    /// are none: no listing.
    ///
    /// # Errors
    /// [`CatalogError::Store`] when the store fails; [`CatalogError::CorruptManifest`] for a
    /// bad record.
    pub async fn refresh(&self, name: &DatasetName) -> Result<usize> {
        let Some(latest) = self.latest_any(name) else {
            let Some(history) = self.load_history(name).await? else {
                return Ok(0);
            };
            let count = history.latest().version as usize;
            self.write_index().entry(name.clone()).or_insert(history);
            return Ok(count);
        };
        let mut count = 0;
        let mut current = latest;
        loop {
            let version = current.version + 1;
            let Some(record) = self.read_record(name, version).await? else {
                break;
            };
            let manifest = Arc::new(self.apply(&record, &current)?);
            let record = Arc::new(record);
            if !self.push(record, Arc::clone(&manifest)) {
                // Another task of this process pushed it first: continue from the index.
                current = self.latest_any(name).unwrap_or(manifest);
                continue;
            }
            current = manifest;
            count += 1;
        }
        Ok(count)
    }

    /// Loads every version the store holds that the index does not (versions and whole
    /// datasets other replicas wrote) and returns how many there were: one listing of the
    /// dataset directories, then one GET per known dataset when nothing is new. catalogd
    /// runs it every `refresh_interval_ms`, so `GET /datasets` shows other replicas'
    /// datasets too.
    ///
    /// # Errors
    /// [`CatalogError::Store`] when the store fails; [`CatalogError::CorruptManifest`] for a
    /// bad record or stray key (the index keeps everything loaded before).
    pub async fn refresh_all(&self) -> Result<usize> {
        let names = self.dataset_dirs().await?;
        let counts: Vec<usize> = futures::stream::iter(names)
            .map(|name| async move { self.refresh(&name).await })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(counts.into_iter().sum())
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

    /// Version `version` of `name` (time travel), materialized from the nearest checkpoint
    /// or full record at or below it and the records after it (read from the store when not
    /// held); the store is asked for newer versions first only when the index does not know
    /// that version yet, or when a retention policy is set (retention counts from the latest
    /// version, which another replica may have written).
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when the dataset has no version,
    /// [`CatalogError::VersionNotFound`] when it has others; [`CatalogError::Gone`] when the
    /// version is past retention; [`CatalogError::Store`] when the store fails.
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

    /// [`Catalog::fetch_version`] without the retention check: a version past retention is
    /// answered too (its objects may be collected already; the catalog page shows it so).
    ///
    /// # Errors
    /// As [`Catalog::fetch_version`], without [`CatalogError::Gone`].
    pub async fn fetch_version_any(
        &self,
        name: &DatasetName,
        version: u64,
    ) -> Result<Arc<Manifest>> {
        let known = self.latest_any(name).is_some_and(|l| l.version >= version);
        if !known {
            self.refresh(name).await?;
        }
        let Some(latest) = self.latest(name) else {
            return Err(CatalogError::NotFound { name: name.clone() });
        };
        if version < self.first_live(name) && version >= 1 {
            // A version of a dataset dropped since: its objects are garbage.
            return Err(CatalogError::Gone {
                name: name.clone(),
                version,
            });
        }
        if version == 0 || version > latest.version {
            return Err(CatalogError::VersionNotFound {
                name: name.clone(),
                version,
            });
        }
        if version == latest.version {
            return Ok(latest);
        }
        self.materialize(name, version).await
    }

    /// One page of `name`'s versions, ascending from `after + 1` (from 1 without it), at
    /// most `limit` (at least 1), after loading versions other replicas wrote; records not
    /// held are read from the store. The second value is the last version of the page when
    /// more follow (the next page's `after`).
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when the dataset has no version; [`CatalogError::Store`]
    /// and [`CatalogError::CorruptManifest`] from reading records.
    pub async fn fetch_version_page(
        &self,
        name: &DatasetName,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<VersionSummary>, Option<u64>)> {
        self.refresh_or_stale(name).await?;
        let latest = self
            .latest(name)
            .ok_or_else(|| CatalogError::NotFound { name: name.clone() })?;
        let first = after.unwrap_or(0).saturating_add(1);
        let last = first
            .saturating_add(limit.max(1) as u64 - 1)
            .min(latest.version);
        if first > last {
            return Ok((Vec::new(), None));
        }
        self.load_records(name, first..=last).await?;
        let index = self.read_index();
        let history = index
            .get(name)
            .ok_or_else(|| CatalogError::NotFound { name: name.clone() })?;
        let now = Utc::now();
        let first_live = history.last_drop().map_or(1, |drop| drop + 1);
        let summaries = history
            .records(first, last)
            .map(|record| VersionSummary {
                version: record.version,
                schema_fingerprint: record.schema_fingerprint.clone(),
                row_count: record.row_count,
                object_count: record.object_count(),
                created_at: record.created_at.clone(),
                operation: record.operation,
                gone: record.version < first_live
                    || !self.retention.is_retained_at(
                        record.version,
                        &record.created_at,
                        latest.version,
                        now,
                    ),
            })
            .collect();
        Ok((summaries, (last < latest.version).then_some(last)))
    }

    /// Every version's `source` of the dataset now under `name` (a dropped one's versions
    /// left out), ascending by version, after loading versions other replicas wrote: the
    /// ledger of loads (docs/contract.md section 12). Reads each record once, then holds it.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when the dataset has no version; store and record errors.
    pub async fn fetch_sources(&self, name: &DatasetName) -> Result<Vec<(u64, Source)>> {
        self.refresh_or_stale(name).await?;
        let latest = self
            .latest(name)
            .ok_or_else(|| CatalogError::NotFound { name: name.clone() })?;
        let first = self.first_live(name);
        self.load_records(name, first..=latest.version).await?;
        Ok(self
            .held_records(name, first, latest.version)
            .iter()
            .map(|record| (record.version, record.source.clone()))
            .collect())
    }

    pub(crate) async fn refresh_or_stale(&self, name: &DatasetName) -> Result<()> {
        match self.refresh(name).await {
            Ok(_) => Ok(()),
            Err(CatalogError::Store(error)) if self.latest(name).is_some() => {
                tracing::warn!(dataset = %name, error = %error_chain(&error), "store unavailable; serving the index");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// The dataset names under `_catalog/datasets/` (one listing with a delimiter).
    async fn dataset_dirs(&self) -> Result<Vec<DatasetName>> {
        self.store
            .list_dirs(CATALOG_PREFIX)
            .await?
            .into_iter()
            .map(|dir| {
                DatasetName::new(&dir).map_err(|_| CatalogError::CorruptManifest {
                    key: format!("{CATALOG_PREFIX}{dir}/"),
                    reason: "not a valid dataset name".into(),
                })
            })
            .collect()
    }

    /// Loads dataset `name` from the store: its latest checkpoint and the records after it,
    /// or, with no checkpoint, every record (datasets younger than the first checkpoint and
    /// catalogs written before checkpoints; the checkpoint the latter lack is written then).
    /// `None` when it has no version.
    async fn load_history(&self, name: &DatasetName) -> Result<Option<History>> {
        let checkpoints = self.checkpoint_versions(name).await?;
        let mut history = None;
        for &version in checkpoints.iter().rev() {
            if let Some(checkpoint) = self.read_checkpoint(name, version).await? {
                let manifest = checkpoint.manifest;
                let record = Arc::new(VersionRecord::from_manifest(manifest.clone()));
                history = Some(History::new(
                    record,
                    Arc::new(manifest),
                    checkpoint.last_drop,
                ));
                break;
            }
        }
        let mut history = match history {
            Some(history) => history,
            None => match self.load_all_records(name).await? {
                Some(history) => history,
                None => return Ok(None),
            },
        };
        for version in checkpoints {
            history.mark_checkpoint(version);
        }
        loop {
            let latest = Arc::clone(history.latest());
            let Some(record) = self.read_record(name, latest.version + 1).await? else {
                break;
            };
            let manifest = Arc::new(self.apply(&record, &latest)?);
            history.push(Arc::new(record), manifest);
        }
        self.heal_checkpoint(&mut history).await;
        Ok(Some(history))
    }

    /// Every record of `name` from a listing of its directory, applied in order.
    async fn load_all_records(&self, name: &DatasetName) -> Result<Option<History>> {
        let keys = self.store.list_keys(&manifest_prefix(name), None).await?;
        let mut located = Vec::with_capacity(keys.len());
        for key in keys {
            let (key_name, version) = parse_manifest_key(&key)?;
            if &key_name == name {
                located.push(version);
            }
        }
        let mut records: Vec<VersionRecord> = futures::stream::iter(located)
            .map(|version| async move { self.read_record(name, version).await })
            .buffered(READ_CONCURRENCY)
            .try_filter_map(|record| async move { Ok(record) })
            .try_collect()
            .await?;
        records.sort_by_key(|record| record.version);
        let mut history: Option<History> = None;
        for (i, record) in records.into_iter().enumerate() {
            if record.version != i as u64 + 1 {
                return Err(CatalogError::CorruptManifest {
                    key: ObjectKey::manifest(name, record.version).to_string(),
                    reason: format!("version {} is missing below it", i + 1),
                });
            }
            let record = Arc::new(record);
            history = Some(match history {
                None => {
                    let manifest = record
                        .manifest(None)
                        .map_err(|reason| corrupt_record(name, record.version, reason))?;
                    History::new(record, Arc::new(manifest), None)
                }
                Some(mut history) => {
                    let manifest = Arc::new(self.apply(&record, history.latest())?);
                    history.push(record, manifest);
                    history
                }
            });
        }
        Ok(history)
    }

    /// Writes the checkpoint of the highest multiple of [`CHECKPOINT_INTERVAL`] at or below
    /// the latest version when it is missing and its manifest is at hand; a failure is
    /// logged (a checkpoint only saves reading).
    async fn heal_checkpoint(&self, history: &mut History) {
        let version = history.latest().version / CHECKPOINT_INTERVAL * CHECKPOINT_INTERVAL;
        if version == 0 || history.has_checkpoint(version) {
            return;
        }
        let manifest = match history.materialize(version) {
            Ok(Some(manifest)) => manifest,
            _ => return,
        };
        let last_drop = history.last_drop().filter(|d| *d <= version);
        if self.write_checkpoint(&manifest, last_drop).await {
            history.mark_checkpoint(version);
        }
    }

    /// Writes `manifest` as its version's checkpoint (create-only; an existing one is
    /// success). False, logged, when the store fails.
    pub(crate) async fn write_checkpoint(
        &self,
        manifest: &Manifest,
        last_drop: Option<u64>,
    ) -> bool {
        let key = checkpoint_key(&manifest.name, manifest.version);
        let checkpoint = Checkpoint {
            manifest: manifest.clone(),
            last_drop,
        };
        let bytes = match serde_json::to_vec(&checkpoint) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%key, %error, "checkpoint not encoded");
                return false;
            }
        };
        match self.store.put_if_absent(&key, Bytes::from(bytes)).await {
            Ok(PutOutcome::Created | PutOutcome::AlreadyExists) => true,
            Err(error) => {
                tracing::warn!(%key, error = %error_chain(&error), "checkpoint not written; the records stay complete");
                false
            }
        }
    }

    /// Versions of `name` with a stored checkpoint, ascending.
    async fn checkpoint_versions(&self, name: &DatasetName) -> Result<Vec<u64>> {
        let prefix = checkpoint_prefix(name);
        let keys = self.store.list_keys(&prefix, None).await?;
        let mut versions = Vec::with_capacity(keys.len());
        for key in keys {
            let version = key
                .as_str()
                .strip_prefix(&prefix)
                .and_then(parse_version_file)
                .ok_or_else(|| CatalogError::CorruptManifest {
                    key: key.to_string(),
                    reason: "not <version as 20 digits>.json".into(),
                })?;
            versions.push(version);
        }
        versions.sort_unstable();
        Ok(versions)
    }

    /// Reads the checkpoint of `version` of `name`; `None` when there is none.
    async fn read_checkpoint(
        &self,
        name: &DatasetName,
        version: u64,
    ) -> Result<Option<Checkpoint>> {
        let key = checkpoint_key(name, version);
        let Some(bytes) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let corrupt = |reason: String| CatalogError::CorruptManifest {
            key: key.to_string(),
            reason,
        };
        let checkpoint: Checkpoint = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(format!("not a checkpoint: {e}")))?;
        let manifest = &checkpoint.manifest;
        if &manifest.name != name || manifest.version != version {
            return Err(corrupt(format!(
                "holds version {} of {}",
                manifest.version, manifest.name
            )));
        }
        Ok(Some(checkpoint))
    }

    /// Reads and checks the record of `version` of `name`; `None` when there is none.
    pub(crate) async fn read_record(
        &self,
        name: &DatasetName,
        version: u64,
    ) -> Result<Option<VersionRecord>> {
        let key = ObjectKey::manifest(name, version);
        let Some(bytes) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let corrupt = |reason: String| CatalogError::CorruptManifest {
            key: key.to_string(),
            reason,
        };
        let record: VersionRecord =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not a record: {e}")))?;
        if &record.name != name || record.version != version {
            return Err(corrupt(format!(
                "holds version {} of {}",
                record.version, record.name
            )));
        }
        let computed = record.schema.fingerprint();
        if record.schema_fingerprint != computed {
            return Err(corrupt(format!(
                "schema_fingerprint {} is not its schema's ({computed})",
                record.schema_fingerprint
            )));
        }
        Ok(Some(record))
    }

    /// The manifest of `record` given the previous version's.
    pub(crate) fn apply(&self, record: &VersionRecord, previous: &Manifest) -> Result<Manifest> {
        record
            .manifest(Some(&previous.objects))
            .map_err(|reason| corrupt_record(&record.name, record.version, reason))
    }

    /// Reads the records of `versions` of `name` the index does not hold.
    pub(crate) async fn load_records(
        &self,
        name: &DatasetName,
        versions: std::ops::RangeInclusive<u64>,
    ) -> Result<()> {
        let missing: Vec<u64> = {
            let index = self.read_index();
            let Some(history) = index.get(name) else {
                return Ok(());
            };
            versions.filter(|v| history.record(*v).is_none()).collect()
        };
        self.read_into_index(name, missing).await
    }

    async fn read_into_index(&self, name: &DatasetName, versions: Vec<u64>) -> Result<()> {
        if versions.is_empty() {
            return Ok(());
        }
        let records: Vec<Arc<VersionRecord>> = futures::stream::iter(versions)
            .map(|version| async move {
                match self.read_record(name, version).await? {
                    Some(record) => Ok(Arc::new(record)),
                    None => Err(corrupt_record(
                        name,
                        version,
                        "the record is missing, yet later versions exist".into(),
                    )),
                }
            })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        if let Some(history) = self.write_index().get_mut(name) {
            history.insert_older(records);
        }
        Ok(())
    }

    /// Version `version` (below the latest) of `name`, from the cache, or materialized from
    /// held records, or from its checkpoint or records read from the store.
    async fn materialize(&self, name: &DatasetName, version: u64) -> Result<Arc<Manifest>> {
        if let Some(hit) = self.cached(name, version) {
            return Ok(hit);
        }
        // The nearest checkpoint at or below, when it is not already covered by held records.
        let checkpoint = version / CHECKPOINT_INTERVAL * CHECKPOINT_INTERVAL;
        let held_base = {
            let index = self.read_index();
            index
                .get(name)
                .and_then(|history| history.full_at_or_below(version))
        };
        let mut base: Option<Manifest> = None;
        if held_base.is_none_or(|b| b < checkpoint) && checkpoint >= 1 {
            base = self
                .read_checkpoint(name, checkpoint)
                .await?
                .map(|c| c.manifest);
        }
        let manifest = match base {
            Some(base) => {
                let after = base.version + 1;
                if after <= version {
                    self.load_records(name, after..=version).await?;
                }
                let index = self.read_index();
                let history = index
                    .get(name)
                    .ok_or_else(|| CatalogError::NotFound { name: name.clone() })?;
                let mut manifest = base;
                for record in history.records(after, version) {
                    manifest = self.apply(record, &manifest)?;
                }
                manifest
            }
            None => {
                // Walk down to a full record, reading what is not held.
                loop {
                    let missing = {
                        let index = self.read_index();
                        let history = index
                            .get(name)
                            .ok_or_else(|| CatalogError::NotFound { name: name.clone() })?;
                        history.missing_below(version, CHECKPOINT_INTERVAL as usize)
                    };
                    if missing.is_empty() {
                        break;
                    }
                    self.read_into_index(name, missing).await?;
                }
                let index = self.read_index();
                let history = index
                    .get(name)
                    .ok_or_else(|| CatalogError::NotFound { name: name.clone() })?;
                history
                    .materialize(version)
                    .map_err(|reason| corrupt_record(name, version, reason))?
                    .ok_or_else(|| {
                        corrupt_record(name, version, "no full record below it".into())
                    })?
            }
        };
        if manifest.version != version {
            return Err(corrupt_record(
                name,
                version,
                "the records do not reach it".into(),
            ));
        }
        let manifest = Arc::new(manifest);
        self.remember(Arc::clone(&manifest));
        Ok(manifest)
    }

    fn cached(&self, name: &DatasetName, version: u64) -> Option<Arc<Manifest>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .iter()
            .find(|m| &m.name == name && m.version == version)
            .cloned()
    }

    fn remember(&self, manifest: Arc<Manifest>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= VERSION_CACHE {
            cache.remove(0);
        }
        cache.push(manifest);
    }

    /// Adds the record of the version after `name`'s latest (or a new dataset's first) to
    /// the index; false when the index already has that version (another task pushed it).
    pub(crate) fn push(&self, record: Arc<VersionRecord>, manifest: Arc<Manifest>) -> bool {
        let mut index = self.write_index();
        match index.get_mut(&manifest.name) {
            Some(history) if history.latest().version + 1 == manifest.version => {
                history.push(record, manifest);
                true
            }
            Some(_) => false,
            None if manifest.version == 1 => {
                index.insert(manifest.name.clone(), History::new(record, manifest, None));
                true
            }
            None => false,
        }
    }

    /// Notes that `name`'s checkpoint of `version` is stored.
    pub(crate) fn mark_checkpoint(&self, name: &DatasetName, version: u64) {
        if let Some(history) = self.write_index().get_mut(name) {
            history.mark_checkpoint(version);
        }
    }

    /// The records of `name` held for versions `from..=to` (no store access).
    pub(crate) fn held_records(
        &self,
        name: &DatasetName,
        from: u64,
        to: u64,
    ) -> Vec<Arc<VersionRecord>> {
        self.read_index()
            .get(name)
            .map(|history| history.records(from, to).cloned().collect())
            .unwrap_or_default()
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

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<DatasetName, History>> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_index(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<DatasetName, History>> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn corrupt_record(name: &DatasetName, version: u64, reason: String) -> CatalogError {
    CatalogError::CorruptManifest {
        key: ObjectKey::manifest(name, version).to_string(),
        reason,
    }
}

/// `<version as 20 digits>.json` -> the version (1 or more).
fn parse_version_file(file: &str) -> Option<u64> {
    file.strip_suffix(".json")
        .filter(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<u64>().ok())
        .filter(|v| *v >= 1)
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
    let version = parse_version_file(file).ok_or_else(|| {
        corrupt("file name is not <version as 20 digits>.json, version 1 or more")
    })?;
    Ok((name, version))
}
