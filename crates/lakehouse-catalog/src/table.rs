//! The Iceberg metadata of each version (DESIGN.md section 8), written through the store.
//!
//! [`Catalog::ensure_table_metadata`] makes the files of a version durable: it plans them
//! with `lakehouse-iceberg`, lists what `datasets/<name>/metadata/` already holds, and writes
//! the missing ones create-only in the plan's order (manifests, manifest lists, then the
//! metadata JSON last), reading Parquet footers (range reads) only for the manifests it has
//! to write. A 412 is success: every file is a pure function of the manifests, so whoever
//! wrote it first wrote the same bytes.

use crate::{Catalog, CatalogError, ManifestStore, PutOutcome, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use lakehouse_api::{DatasetName, Manifest, ObjectKey, ObjectRef, Schema};
use lakehouse_iceberg::{FileKind, FileMetrics, TableInput, metadata_dir};
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Bytes read from the end of a Parquet object in the first range read: the footer of a
/// typical object fits, so one request usually does.
const FOOTER_PREFETCH_BYTES: u64 = 64 * 1024;

impl<S: ManifestStore> Catalog<S> {
    /// The table input of version `version` of `name` from the index: versions 1..version,
    /// with the snapshots retained when `version` was committed (its `created_at` as now).
    fn table_input(&self, name: &DatasetName, version: u64) -> Result<TableInput> {
        let base = self.table_base.as_deref().unwrap_or("memory://");
        let versions: Vec<Arc<Manifest>> = self
            .versions(name)
            .unwrap_or_default()
            .into_iter()
            .take_while(|m| m.version <= version)
            .collect();
        let at = versions
            .last()
            .and_then(|m| DateTime::parse_from_rfc3339(&m.created_at).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        let retained: BTreeSet<u64> = versions
            .iter()
            .filter(|m| self.retention.is_retained(m, version, at))
            .map(|m| m.version)
            .collect();
        TableInput::new(base, versions, retained).map_err(|error| CatalogError::TableMetadata {
            name: name.clone(),
            version,
            reason: crate::error_chain(&error),
        })
    }

    /// Keys the latest version's Iceberg metadata of `name` references (from the index;
    /// empty for an unknown dataset): its metadata JSON, every manifest list and manifest of
    /// its snapshots, and every data file those manifests name. What garbage collection keeps
    /// (DESIGN.md section 8: the metadata never points at a missing object), even where its
    /// own retention, judged now, would let a version's objects go: the snapshots of the
    /// latest metadata were judged when that version was committed.
    ///
    /// # Errors
    /// [`CatalogError::TableMetadata`] when the projection fails: the caller must then keep
    /// the dataset's objects rather than treat nothing as referenced.
    pub fn table_keys(&self, name: &DatasetName) -> Result<Vec<String>> {
        let Some(latest) = self.latest(name) else {
            return Ok(Vec::new());
        };
        let input = self.table_input(name, latest.version)?;
        let mut keys = Vec::new();
        for file in input.plan() {
            keys.extend(
                file.data_files
                    .iter()
                    .flat_map(|object| object.keys().map(ToString::to_string)),
            );
            keys.push(file.key);
        }
        Ok(keys)
    }

    /// Writes whatever is missing of version `version`'s Iceberg metadata (module docs).
    /// Does nothing when no table base is set ([`Catalog::with_table_base`]) or when this
    /// process already made that version durable.
    ///
    /// # Errors
    /// [`CatalogError::Store`] when the store fails; [`CatalogError::InvalidObject`] when a
    /// data object the version names is missing; [`CatalogError::TableMetadata`] when the
    /// projection fails. An object whose footer does not read is not an error: its entry
    /// gets no column metrics.
    pub async fn ensure_table_metadata(&self, name: &DatasetName, version: u64) -> Result<()> {
        if self.table_base.is_none() || self.is_durable(name, version) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let input = self.table_input(name, version)?;
        let plan = input.plan();
        let existing: HashMap<String, u64> = self
            .store
            .list_objects(&metadata_dir(name))
            .await?
            .into_iter()
            .map(|object| (object.key.to_string(), object.size))
            .collect();
        let metadata_key = plan.last().map(|file| file.key.clone());
        if metadata_key.is_some_and(|key| existing.contains_key(&key)) {
            self.mark_durable(name, version);
            return Ok(());
        }
        let versions = self.versions(name).unwrap_or_default();
        let mut lengths = existing.clone();
        let mut written = 0usize;
        for file in &plan {
            if existing.contains_key(&file.key) {
                continue;
            }
            let mut metrics = HashMap::new();
            if let FileKind::Manifest { version: owner, .. } = file.kind {
                let schema = &versions[owner as usize - 1].schema;
                for object in &file.data_files {
                    let found = self.footer_metrics(object, schema).await?;
                    metrics.insert(object.key.clone(), found);
                }
            }
            let bytes = input.render(file, &metrics, &lengths).map_err(|error| {
                CatalogError::TableMetadata {
                    name: name.clone(),
                    version,
                    reason: crate::error_chain(&error),
                }
            })?;
            let key =
                ObjectKey::new(file.key.clone()).map_err(|error| CatalogError::TableMetadata {
                    name: name.clone(),
                    version,
                    reason: error.to_string(),
                })?;
            let length = bytes.len() as u64;
            match self.store.put_if_absent(&key, Bytes::from(bytes)).await? {
                PutOutcome::Created => written += 1,
                PutOutcome::AlreadyExists => {}
            }
            lengths.insert(file.key.clone(), length);
        }
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(dataset = %name, version, written, duration_ms, "iceberg metadata durable");
        self.mark_durable(name, version);
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

    /// The footer metrics of a data object: one range read of its last
    /// [`FOOTER_PREFETCH_BYTES`], a second one when the footer is longer. An object whose
    /// bytes are not a readable Parquet footer gets no column metrics (logged): its bytes
    /// never change, so that is as deterministic as the metrics.
    ///
    /// # Errors
    /// [`CatalogError::Store`] when the store fails (the caller must not write a manifest
    /// then); the reason text when the object is missing.
    async fn footer_metrics(&self, object: &ObjectRef, schema: &Schema) -> Result<FileMetrics> {
        let missing = || CatalogError::InvalidObject {
            key: object.key.clone(),
            reason: "no such object in storage".into(),
        };
        let size = object.size;
        let tail_len = size.min(FOOTER_PREFETCH_BYTES);
        let tail = self
            .store
            .get_range(&object.key, size - tail_len..size)
            .await?
            .ok_or_else(missing)?;
        let unreadable = |reason: String| {
            tracing::warn!(key = %object.key, %reason, "no Parquet footer: the data file gets no column metrics");
            Ok(FileMetrics::default())
        };
        let Some(footer) = tail
            .len()
            .checked_sub(8)
            .and_then(|start| <[u8; 8]>::try_from(&tail[start..]).ok())
        else {
            return unreadable("shorter than a Parquet footer".into());
        };
        let length = match FooterTail::try_new(&footer) {
            Ok(footer) => footer.metadata_length() as u64,
            Err(error) => return unreadable(error.to_string()),
        };
        if length + 8 > size {
            return unreadable("footer longer than the object".into());
        }
        let metadata = if length + 8 <= tail.len() as u64 {
            let end = tail.len() - 8;
            tail.slice(end - length as usize..end)
        } else {
            self.store
                .get_range(&object.key, size - 8 - length..size - 8)
                .await?
                .ok_or_else(missing)?
        };
        let schema = schema.clone();
        let decoded = tokio::task::spawn_blocking(move || {
            ParquetMetaDataReader::decode_metadata(&metadata)
                .map(|decoded| FileMetrics::from_parquet(&decoded, &schema))
        })
        .await;
        match decoded {
            Ok(Ok(metrics)) => Ok(metrics),
            Ok(Err(error)) => unreadable(error.to_string()),
            // A decoder panic is as deterministic as its bytes.
            Err(error) => unreadable(format!("footer decoding failed: {error}")),
        }
    }

    /// Forgets which versions of `name` this process made durable, so the next
    /// [`Catalog::ensure_table_metadata`] looks at the store again (a reader found a file
    /// missing that something outside this process deleted).
    pub fn forget_table_metadata(&self, name: &DatasetName) {
        let mut durable = self.durable.lock().unwrap_or_else(|p| p.into_inner());
        durable.remove(name);
    }

    fn is_durable(&self, name: &DatasetName, version: u64) -> bool {
        let durable = self.durable.lock().unwrap_or_else(|p| p.into_inner());
        durable.get(name).is_some_and(|v| *v >= version)
    }

    fn mark_durable(&self, name: &DatasetName, version: u64) {
        let mut durable = self.durable.lock().unwrap_or_else(|p| p.into_inner());
        let entry = durable.entry(name.clone()).or_insert(version);
        *entry = (*entry).max(version);
    }
}
