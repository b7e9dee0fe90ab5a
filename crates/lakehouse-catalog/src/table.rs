//! The Iceberg metadata of each version (docs/contract.md sections 8 and 10), written through
//! the store.
//!
//! Version N's files are computed by `lakehouse-iceberg` from the table at N-1 (held in
//! memory after this process wrote or read it, else parsed back from N-1's metadata JSON and
//! manifest list: two GETs) and version N's change: the objects it adds (their Parquet
//! footers read once, here) and removes. No listing, no footer read twice, no file written
//! that the change does not need: the work follows what the version changes, not history.
//! Files are written create-only, the manifests and the manifest list at once, then the
//! metadata JSON last (so an existing metadata JSON means everything it references exists).
//! A 412 is success: every file is a pure function of the records and the footers, so
//! whoever wrote it first wrote the same bytes.

use crate::footer::{FooterError, read_footer_with};
use crate::record::VersionRecord;
use crate::{Catalog, CatalogError, ManifestStore, PutOutcome, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use lakehouse_api::{DatasetName, Manifest, ObjectKey, ObjectRef, Schema};
use lakehouse_iceberg::{FileMetrics, TableFile, TableState, VersionChange, metadata_file_key};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// How many metadata files or footers are written or read at once.
const IO_CONCURRENCY: usize = 8;

/// Footer metrics of data objects by key, read ahead of rendering
/// ([`Catalog::prefetch_footers`]).
pub(crate) type Footers = HashMap<ObjectKey, FileMetrics>;

/// A version's Iceberg files, rendered and not yet written ([`Catalog::render_and_write_avro`]).
#[derive(Debug)]
pub(crate) struct RenderedVersion {
    name: DatasetName,
    version: u64,
    /// The manifests and the manifest list.
    files: Vec<TableFile>,
    /// The metadata JSON (written last) and the table at `version`, being made on the
    /// blocking pool meanwhile ([`lakehouse_iceberg::PendingMetadata`]).
    metadata: tokio::task::JoinHandle<lakehouse_iceberg::Result<(TableFile, TableState)>>,
    /// When rendering began (the logged duration covers both halves).
    started: std::time::Instant,
}

impl<S: ManifestStore> Catalog<S> {
    /// Makes version `version`'s Iceberg metadata durable: nothing when this process already
    /// did, or its metadata JSON is stored (the table is then read back from it). Else the
    /// table is rolled forward from the newest earlier version whose metadata JSON is stored
    /// (normally version - 1: every version but the latest always has its metadata, docs/
    /// contract.md section 8), or from an empty table when files were lost: each version's
    /// files are computed and written again, byte for byte what was written first (they are
    /// a function of the records and the footers), the metadata JSON of `version` only.
    /// Does nothing when no table base is set ([`Catalog::with_table_base`]).
    ///
    /// # Errors
    /// [`CatalogError::Store`] when the store fails; [`CatalogError::InvalidObject`] when a
    /// data object a version adds is missing; [`CatalogError::TableMetadata`] when the
    /// projection fails. An object whose footer does not read is not an error: its entry
    /// gets no column metrics.
    pub async fn ensure_table_metadata(&self, name: &DatasetName, version: u64) -> Result<()> {
        if self.table_base.is_none() || self.is_durable(name, version) {
            return Ok(());
        }
        if let Some(state) = self.read_table_state(name, version).await? {
            self.remember_table(name, state);
            return Ok(());
        }
        let first_live = self.first_live(name);
        let mut state = None;
        let mut below = version;
        while below > first_live {
            below -= 1;
            if let Some(found) = self.held_table(name, below) {
                state = Some(found);
                break;
            }
            if let Some(found) = self.read_table_state(name, below).await? {
                state = Some(Arc::new(found));
                break;
            }
        }
        let mut state = state.unwrap_or_else(|| Arc::new(TableState::empty(self.base(), name)));
        let from = state.version().map_or(first_live, |v| v + 1);
        if from + 1 < version {
            tracing::warn!(dataset = %name, from, version, "iceberg metadata missing below the latest: rolling the table forward");
        }
        for at in from..=version {
            let manifest = self.fetch_version_any(name, at).await?;
            let previous = if at == first_live {
                None
            } else {
                Some(self.fetch_version_any(name, at - 1).await?)
            };
            state = self
                .write_table_version(state, previous.as_deref(), &manifest, at == version)
                .await?;
        }
        Ok(())
    }

    /// Heals the latest version's metadata of every dataset in the index (at start): a
    /// failure is logged, not fatal, and healed again before the dataset's next commit.
    pub async fn heal_table_metadata(&self) {
        for name in self.dataset_names() {
            let Some(latest) = self.latest(&name) else {
                continue;
            };
            if let Err(error) = self.ensure_table_metadata(&name, latest.version).await {
                tracing::warn!(dataset = %name, version = latest.version, error = %crate::error_chain(&error), "iceberg metadata not healed; retried before the next commit");
            }
        }
    }

    /// Keys the latest version's Iceberg metadata of `name` references (empty for an
    /// unknown dataset or when no table base is set): its metadata JSON, the manifest lists
    /// of its snapshots and every manifest they name. What garbage collection keeps
    /// (docs/contract.md section 8); the data files those manifests name are the objects of
    /// the versions from [`Catalog::oldest_snapshot`] on, which garbage collection keeps too.
    ///
    /// # Errors
    /// [`CatalogError::Store`] or [`CatalogError::TableMetadata`] when the table cannot be
    /// read: the caller must then keep the dataset's objects rather than treat nothing as
    /// referenced.
    pub async fn table_keys(&self, name: &DatasetName) -> Result<Vec<String>> {
        let Some(latest) = self.latest(name) else {
            return Ok(Vec::new());
        };
        if self.table_base.is_none() {
            return Ok(Vec::new());
        }
        self.ensure_table_metadata(name, latest.version).await?;
        let state = self.table_state(name, latest.version).await?;
        let oldest_list = match state.oldest_list_key() {
            Some(key) => {
                let object = self.object_key(name, latest.version, key)?;
                self.store.get(&object).await?.ok_or_else(|| {
                    self.table_error(name, latest.version, format!("{object} is missing"))
                })?
            }
            None => Bytes::new(),
        };
        let keys = state
            .referenced_keys(&oldest_list)
            .map_err(|error| self.table_error(name, latest.version, crate::error_chain(&error)))?;
        Ok(keys.into_iter().collect())
    }

    /// The oldest version whose snapshot the latest metadata of `name` keeps (its latest
    /// version when no table base is set).
    pub(crate) async fn oldest_snapshot(&self, name: &DatasetName) -> Result<Option<u64>> {
        let Some(latest) = self.latest(name) else {
            return Ok(None);
        };
        if self.table_base.is_none() {
            return Ok(Some(latest.version));
        }
        let state = self.table_state(name, latest.version).await?;
        Ok(Some(
            state.oldest_snapshot_version().unwrap_or(latest.version),
        ))
    }

    /// Forgets which versions of `name` this process made durable, so the next
    /// [`Catalog::ensure_table_metadata`] looks at the store again (a reader found a file
    /// missing that something outside this process deleted).
    pub fn forget_table_metadata(&self, name: &DatasetName) {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables.remove(name);
    }

    /// The table of `name` at `version`: held, or read back from its files.
    async fn table_state(&self, name: &DatasetName, version: u64) -> Result<Arc<TableState>> {
        if let Some(state) = self.held_table(name, version) {
            return Ok(state);
        }
        if let Some(state) = self.read_table_state(name, version).await? {
            return Ok(self.remember_table(name, state));
        }
        self.ensure_table_metadata(name, version).await?;
        self.held_table(name, version)
            .ok_or_else(|| self.table_error(name, version, "the metadata is not readable".into()))
    }

    /// The table of `name` at `version` from its stored metadata JSON and manifest list;
    /// `None` when the metadata JSON is not stored.
    async fn read_table_state(
        &self,
        name: &DatasetName,
        version: u64,
    ) -> Result<Option<TableState>> {
        let key = self.object_key(name, version, metadata_file_key(name, version))?;
        let Some(json) = self.store.get(&key).await? else {
            return Ok(None);
        };
        // Parsing the metadata JSON (up to `max_snapshots` snapshots) and the manifest list
        // (Avro) is CPU work: off the runtime.
        let base = self.base().to_owned();
        let list = self
            .off_runtime(name, version, {
                let (base, name, json) = (base.clone(), name.clone(), json.clone());
                move || TableState::list_key_of(&base, &name, &json)
            })
            .await?;
        let list = if list.is_empty() {
            Bytes::new()
        } else {
            let key = self.object_key(name, version, list)?;
            self.store
                .get(&key)
                .await?
                .ok_or_else(|| self.table_error(name, version, format!("{key} is missing")))?
        };
        let owned_name = name.clone();
        self.off_runtime(name, version, move || {
            TableState::from_files(&base, &owned_name, &json, &list)
        })
        .await
        .map(Some)
    }

    /// Runs `work` (parsing or rendering Iceberg files: CPU, milliseconds for a table at its
    /// snapshot cap) on tokio's blocking pool, in the caller's tracing span.
    ///
    /// # Errors
    /// [`CatalogError::TableMetadata`] of `name` at `version` when `work` fails or panics.
    async fn off_runtime<T, F>(&self, name: &DatasetName, version: u64, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> lakehouse_iceberg::Result<T> + Send + 'static,
    {
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work))
            .await
            .map_err(|join| {
                self.table_error(name, version, format!("off-runtime work failed: {join}"))
            })?
            .map_err(|error| self.table_error(name, version, crate::error_chain(&error)))
    }

    /// Writes version `manifest`'s files from `state` (the table at the version before),
    /// its metadata JSON last and only when `with_json` (a roll-forward writes only the
    /// last one), holds the new table and returns it.
    async fn write_table_version(
        &self,
        state: Arc<TableState>,
        previous: Option<&Manifest>,
        manifest: &Manifest,
        with_json: bool,
    ) -> Result<Arc<TableState>> {
        let rendered = self
            .render_table_version(state, previous, manifest, &Footers::new())
            .await?;
        self.write_rendered(rendered, with_json).await
    }

    /// Version `manifest`'s files rendered from `state`: the footers of the objects it adds
    /// read (once), the manifests a merge rewrites read, then the Avro and JSON rendered off
    /// the runtime. Writes nothing.
    async fn render_table_version(
        &self,
        state: Arc<TableState>,
        previous: Option<&Manifest>,
        manifest: &Manifest,
        footers: &Footers,
    ) -> Result<RenderedVersion> {
        let name = &manifest.name;
        let version = manifest.version;
        let started = std::time::Instant::now();
        let tag = commit_tag(previous, manifest);
        let (added, removed) = changes(previous, manifest);
        let metrics: Vec<(ObjectRef, FileMetrics)> = futures::stream::iter(added)
            .map(|object| async move {
                let metrics = match footers.get(&object.key) {
                    Some(metrics) => metrics.clone(),
                    None => self.footer_metrics(&object, &manifest.schema).await?,
                };
                Ok::<_, CatalogError>((object, metrics))
            })
            .buffered(IO_CONCURRENCY)
            .try_collect()
            .await?;
        let footers_ms = started.elapsed().as_secs_f64() * 1000.0;
        let oldest_retained = self
            .oldest_retained(name, version, &manifest.created_at)
            .await?;
        let wanted = state
            .manifests_to_read(
                &VersionChange {
                    manifest,
                    added: &metrics,
                    removed: &removed,
                    oldest_retained,
                    tag: Some(&tag),
                },
                &self.table_config,
            )
            .map_err(|error| self.table_error(name, version, crate::error_chain(&error)))?;
        let read: HashMap<String, Vec<u8>> = futures::stream::iter(wanted)
            .map(|key| async move {
                let object = self.object_key(name, version, key.clone())?;
                let bytes = self.store.get(&object).await?.ok_or_else(|| {
                    self.table_error(name, version, format!("manifest {key} is missing"))
                })?;
                Ok::<_, CatalogError>((key, bytes.to_vec()))
            })
            .buffer_unordered(IO_CONCURRENCY)
            .try_collect()
            .await?;
        let read_ms = started.elapsed().as_secs_f64() * 1000.0;
        // Rendering (Avro and JSON) is CPU work: off the runtime.
        let config = self.table_config.clone();
        let manifest_owned = manifest.clone();
        let (files, pending) = self
            .off_runtime(name, version, move || {
                let change = VersionChange {
                    manifest: &manifest_owned,
                    added: &metrics,
                    removed: &removed,
                    oldest_retained,
                    tag: Some(&tag),
                };
                state.commit_staged(&change, &read, &config)
            })
            .await?;
        let rendered_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!(dataset = %name, version, footers_ms, read_ms, rendered_ms, "iceberg avro files rendered");
        // The metadata JSON is made now, while the record and the Avro files are written.
        let span = tracing::Span::current();
        let metadata = tokio::task::spawn_blocking(move || span.in_scope(|| pending.finish()));
        Ok(RenderedVersion {
            name: name.clone(),
            version,
            files,
            metadata,
            started,
        })
    }

    /// Renders version `manifest`'s Iceberg files given the version before it (`None` for a
    /// first version) and writes its Avro files: the first half of the commit path of
    /// [`Catalog::register`], run while the version record is being written (docs/contract.md
    /// section 10). The Avro files' names carry the commit's tag ([`commit_tag`]), so they may
    /// be written while the race for the version is undecided (a committer that loses it
    /// leaves them to garbage collection); only the metadata JSON, named by version, waits
    /// for the record ([`Catalog::write_rendered`]). `footers` holds footer metrics read
    /// ahead ([`Catalog::prefetch_footers`]); the others are read here. `None` when there is
    /// nothing to write (no table base, or this process already made the version durable).
    ///
    /// # Errors
    /// As [`Catalog::ensure_table_metadata`]; [`CatalogError::Store`] when a write fails.
    pub(crate) async fn render_and_write_avro(
        &self,
        previous: Option<&Manifest>,
        manifest: &Manifest,
        footers: &Footers,
    ) -> Result<Option<RenderedVersion>> {
        if self.table_base.is_none() || self.is_durable(&manifest.name, manifest.version) {
            return Ok(None);
        }
        let state = match previous {
            None => Arc::new(TableState::empty(self.base(), &manifest.name)),
            Some(previous) => self.table_state(&manifest.name, previous.version).await?,
        };
        let mut rendered = self
            .render_table_version(state, previous, manifest, footers)
            .await?;
        let files = std::mem::take(&mut rendered.files);
        self.put_table_files(&rendered.name, rendered.version, files)
            .await?;
        Ok(Some(rendered))
    }

    /// Writes `files` of `version` at once (create-only; one already there holds the same
    /// bytes).
    async fn put_table_files(
        &self,
        name: &DatasetName,
        version: u64,
        files: Vec<TableFile>,
    ) -> Result<()> {
        futures::stream::iter(files)
            .map(|file| self.put_table_file(name, version, file))
            .buffer_unordered(IO_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }

    /// Writes what [`Catalog::render_and_write_avro`] rendered, once its version's record is
    /// written: the manifests and the manifest list at once, then the metadata JSON (when
    /// `with_json`), so a stored metadata JSON means everything it names is stored. Holds the
    /// new table and returns it.
    ///
    /// # Errors
    /// [`CatalogError::Store`] when a write fails.
    pub(crate) async fn write_rendered(
        &self,
        rendered: RenderedVersion,
        with_json: bool,
    ) -> Result<Arc<TableState>> {
        let RenderedVersion {
            name,
            version,
            files,
            metadata,
            started,
        } = rendered;
        let written = files.len() + usize::from(with_json);
        let (stored, made) = tokio::join!(self.put_table_files(&name, version, files), metadata);
        stored?;
        let (json, next) = made
            .map_err(|join| self.table_error(&name, version, format!("rendering failed: {join}")))?
            .map_err(|error| self.table_error(&name, version, crate::error_chain(&error)))?;
        if with_json {
            self.put_table_file(&name, version, json).await?;
        }
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(dataset = %name, version, written, duration_ms, "iceberg metadata durable");
        let next = Arc::new(next);
        if with_json {
            self.remember_held(&name, Arc::clone(&next));
        }
        Ok(next)
    }

    async fn put_table_file(
        &self,
        name: &DatasetName,
        version: u64,
        file: TableFile,
    ) -> Result<()> {
        let key = self.object_key(name, version, file.key)?;
        match self
            .store
            .put_if_absent(&key, Bytes::from(file.bytes))
            .await?
        {
            PutOutcome::Created | PutOutcome::AlreadyExists => Ok(()),
        }
    }

    /// The oldest version whose snapshot version `version` keeps: retention judged at its
    /// commit time `created_at` (docs/decisions.md, "Garbage collection and retention").
    async fn oldest_retained(
        &self,
        name: &DatasetName,
        version: u64,
        created_at: &str,
    ) -> Result<u64> {
        let first_live = self.first_live(name);
        if self.retention.keeps_all() {
            return Ok(first_live);
        }
        let at = DateTime::parse_from_rfc3339(created_at)
            .map_or_else(|_| Utc::now(), |t| t.with_timezone(&Utc));
        let span = self.table_config.max_snapshots.max(1) as u64;
        let from = version.saturating_sub(span - 1).max(1);
        // Below `version` only: its own record may not be written yet (the register renders
        // while it writes it), and the latest version is always retained, so it is the
        // answer when no earlier one is.
        let below = version.saturating_sub(1);
        if from > below {
            return Ok(version);
        }
        self.load_records(name, from..=below).await?;
        let oldest = self
            .held_records(name, from, below)
            .iter()
            .find(|record| {
                record.version >= first_live
                    && self.retention.is_retained_at(
                        record.version,
                        &record.created_at,
                        version,
                        at,
                    )
            })
            .map_or(version, |record| record.version);
        Ok(oldest)
    }

    /// The footer metrics of `objects` under `schema`, read before the commit needs them
    /// (docs/contract.md section 10: a register reads the footers of the objects it adds
    /// while it checks them and loads other replicas' versions, so rendering the version's
    /// Iceberg files does not wait for them). Best effort: an object whose footer cannot be
    /// read now is left out, and rendering reads it again and reports why. Empty when no
    /// table base is set.
    pub(crate) async fn prefetch_footers(&self, objects: &[ObjectRef], schema: &Schema) -> Footers {
        if self.table_base.is_none() {
            return Footers::new();
        }
        let mut footers = Footers::new();
        for batch in objects.chunks(IO_CONCURRENCY) {
            let mut reads = futures::stream::FuturesUnordered::new();
            for object in batch {
                reads.push(async move {
                    let metrics = self.footer_metrics(object, schema).await;
                    (object.key.clone(), metrics)
                });
            }
            while let Some((key, metrics)) = reads.next().await {
                if let Ok(metrics) = metrics {
                    footers.insert(key, metrics);
                }
            }
        }
        footers
    }

    /// The footer metrics of a data object, read by the one footer reader
    /// ([`crate::footer::read_footer_with`]: one range read of its tail, a second one when
    /// the footer is longer, at most [`crate::footer::MAX_FOOTER_BYTES`]) and computed with
    /// its decoding on the blocking pool. An object whose bytes are not a readable Parquet
    /// footer gets no column metrics (logged): its bytes never change, so that is as
    /// deterministic as the metrics.
    ///
    /// # Errors
    /// [`CatalogError::Store`] when the store fails (the caller must not write a manifest
    /// then); [`CatalogError::InvalidObject`] when the object is missing.
    async fn footer_metrics(&self, object: &ObjectRef, schema: &Schema) -> Result<FileMetrics> {
        let schema = schema.clone();
        let read = read_footer_with(&self.store, object, move |footer| {
            FileMetrics::from_parquet(&footer, &schema)
        })
        .await;
        match read {
            Ok(metrics) => Ok(metrics),
            Err(FooterError::Missing) => Err(CatalogError::InvalidObject {
                key: object.key.clone(),
                reason: "no such object in storage".into(),
            }),
            Err(FooterError::Store(error)) => Err(error.into()),
            Err(
                error @ (FooterError::NotParquet(_)
                | FooterError::TooLarge { .. }
                | FooterError::Decode(_)),
            ) => {
                let reason = crate::error_chain(&error);
                tracing::warn!(key = %object.key, %reason, "no Parquet footer: the data file gets no column metrics");
                Ok(FileMetrics::default())
            }
        }
    }

    fn base(&self) -> &str {
        self.table_base.as_deref().unwrap_or("memory://")
    }

    fn object_key(&self, name: &DatasetName, version: u64, key: String) -> Result<ObjectKey> {
        ObjectKey::new(key).map_err(|error| self.table_error(name, version, error.to_string()))
    }

    fn table_error(&self, name: &DatasetName, version: u64, reason: String) -> CatalogError {
        CatalogError::TableMetadata {
            name: name.clone(),
            version,
            reason,
        }
    }

    fn held_table(&self, name: &DatasetName, version: u64) -> Option<Arc<TableState>> {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables
            .get(name)
            .filter(|state| state.version() == Some(version))
            .cloned()
    }

    fn remember_table(&self, name: &DatasetName, state: TableState) -> Arc<TableState> {
        self.remember_held(name, Arc::new(state))
    }

    /// Holds `state` as the table of `name` unless a newer one is held; returns it.
    fn remember_held(&self, name: &DatasetName, state: Arc<TableState>) -> Arc<TableState> {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let newer = tables
            .get(name)
            .is_some_and(|held| held.version() > state.version());
        if !newer {
            tables.insert(name.clone(), Arc::clone(&state));
        }
        state
    }

    fn is_durable(&self, name: &DatasetName, version: u64) -> bool {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables
            .get(name)
            .is_some_and(|state| state.version() >= Some(version))
    }
}

/// The tag in the names of version `manifest`'s Avro files (docs/contract.md section 8):
/// [`lakehouse_iceberg::ids::commit_tag`] of its record after `previous`
/// ([`VersionRecord::of`], compact JSON). A function of the two versions, so a restart or
/// another replica renders the same names; two committers racing for one version with
/// different contents get different names, so each may write its files before the race is
/// decided.
fn commit_tag(previous: Option<&Manifest>, manifest: &Manifest) -> String {
    let record = VersionRecord::of(manifest, previous);
    // Serializing a record cannot fail (strings, numbers and lists); an empty body would
    // still give one tag per version.
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    lakehouse_iceberg::ids::commit_tag(&bytes)
}

/// The objects `manifest` adds to `previous` and those it removes, each in its version's
/// order.
fn changes(previous: Option<&Manifest>, manifest: &Manifest) -> (Vec<ObjectRef>, Vec<ObjectRef>) {
    let before: HashSet<&ObjectKey> = previous
        .map(|p| p.objects.iter().map(|o| &o.key).collect())
        .unwrap_or_default();
    let after: HashSet<&ObjectKey> = manifest.objects.iter().map(|o| &o.key).collect();
    let added = manifest
        .objects
        .iter()
        .filter(|o| !before.contains(&o.key))
        .cloned()
        .collect();
    let removed = previous
        .map(|p| {
            p.objects
                .iter()
                .filter(|o| !after.contains(&o.key))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    (added, removed)
}
