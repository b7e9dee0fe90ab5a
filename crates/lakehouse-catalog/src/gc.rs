//! Garbage collection of `datasets/` (docs/decisions.md, "Garbage collection and retention";
//! docs/contract.md section 2, invariant 7: "orphaned objects are removed by GC later").
//!
//! An object under `datasets/` is deleted only when all of these hold:
//! 1. no retained version (see [`crate::RetentionPolicy`]) of any dataset references it;
//! 2. its `last_modified` is at least `grace_ms` old, so an ingest that has PUT its object
//!    but not registered it yet (ingestd's PUT -> register gap, or a slow multipart upload
//!    whose `last_modified` is its start) keeps it;
//! 3. the decision and the deletes for a dataset happen under that dataset's commit lock,
//!    the one [`Catalog::register`] holds from its existence check of the objects to the
//!    commit, after re-reading the dataset's manifests from the store (versions other
//!    replicas wrote) and re-listing its objects: a register in this process can never
//!    reference an object between its check and its commit while GC deletes it.
//!
//! Iceberg metadata (`datasets/<name>/metadata/`, docs/contract.md section 8) is referenced by the
//! latest version: its metadata JSON, the manifest lists and manifests of its snapshots and
//! the data files those manifests name (kept even when retention, judged now, would let
//! their version go: the snapshots were chosen when the latest version was committed).
//! Older metadata JSON files and the files of snapshots the latest metadata dropped are
//! collected like any unreferenced object.
//!
//! Manifests (`_catalog/`) are never deleted: they are tiny and they are the audit trail.

use crate::{Catalog, ManifestStore, Result, StoredObject, error_chain};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use lakehouse_api::{DatasetName, GcRunResponse, ObjectKey};
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

/// Prefix of every Parquet object: `datasets/` (docs/contract.md section 5). Garbage collection
/// looks at nothing else.
pub const DATA_PREFIX: &str = "datasets/";

/// How many DELETEs a run has in flight at once.
const DELETE_CONCURRENCY: usize = 16;

/// How one garbage collection run behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Unreferenced objects younger than this many milliseconds (by `last_modified`) are
    /// kept: catalogd's `gc_grace_ms`.
    pub grace_ms: u64,
    /// Decide but delete nothing; the answer lists `would_delete`.
    pub dry_run: bool,
}

impl<S: ManifestStore> Catalog<S> {
    /// One garbage collection run over `datasets/` (module docs for the rules).
    ///
    /// Lists `datasets/`, then for each dataset found there, under its commit lock: loads
    /// versions other replicas wrote, computes the objects its retained versions reference,
    /// re-lists its objects and deletes (or, on a dry run, reports) those that are
    /// unreferenced and older than `grace_ms`. Keys under `datasets/` outside the
    /// `datasets/<name>/...` layout can be referenced by no version (register enforces the
    /// layout) and follow the same grace rule without a lock. Logs one summary line.
    ///
    /// A dataset that cannot be decided (a manifest that does not read, the store failing)
    /// is skipped with a line in `errors`, and the run goes on with the next one; so is a
    /// failed DELETE.
    ///
    /// # Errors
    /// [`crate::CatalogError::Store`] when the first listing of `datasets/` fails: nothing
    /// was deleted.
    pub async fn collect_garbage(&self, options: GcOptions) -> Result<GcRunResponse> {
        let started = Instant::now();
        let listed = self.store().list_objects(DATA_PREFIX).await?;
        let mut groups: BTreeMap<DatasetName, u64> = BTreeMap::new();
        let mut strays = Vec::new();
        for object in listed {
            match dataset_of(&object.key) {
                Some(name) => *groups.entry(name).or_default() += 1,
                None => strays.push(object),
            }
        }
        // Every object a retained version of any dataset in the index references: objects
        // are only ever referenced from their own dataset's directory (register enforces the
        // layout of docs/contract.md section 5), but this keeps GC safe whatever a manifest says.
        let referenced_anywhere = self.retained_keys_in_index().await?;
        let mut report = GcRunResponse {
            dry_run: options.dry_run,
            ..GcRunResponse::default()
        };
        for (name, listed_count) in groups {
            if let Err(error) = self
                .collect_dataset(&name, options, &referenced_anywhere, &mut report)
                .await
            {
                report.scanned_objects += listed_count;
                let error = format!("dataset {name}: {}", error_chain(&error));
                tracing::warn!(%error, "garbage collection skipped a dataset");
                report.errors.push(error);
            }
        }
        report.scanned_objects += strays.len() as u64;
        let doomed = self.sort_out(
            strays,
            &referenced_anywhere,
            options,
            Utc::now(),
            &mut report,
        );
        self.delete_all(doomed, options, &mut report).await;
        report.deleted.sort();
        report.would_delete.sort();
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            dry_run = report.dry_run,
            deleted = report.deleted.len(),
            would_delete = report.would_delete.len(),
            retained_objects = report.retained_objects,
            skipped_young = report.skipped_young,
            scanned_objects = report.scanned_objects,
            expired_versions = report.expired_versions,
            errors = report.errors.len(),
            duration_ms = report.duration_ms,
            grace_ms = options.grace_ms,
            "garbage collection run complete"
        );
        Ok(report)
    }

    /// One dataset of [`Catalog::collect_garbage`], under its commit lock.
    async fn collect_dataset(
        &self,
        name: &DatasetName,
        options: GcOptions,
        referenced_anywhere: &HashSet<ObjectKey>,
        report: &mut GcRunResponse,
    ) -> Result<()> {
        let lock = self.commit_lock(name);
        let _guard = lock.lock().await;
        // Versions another replica registered since this one last looked: their objects
        // must count as referenced.
        self.refresh(name).await?;
        let now = Utc::now();
        let (mut referenced, expired) = self.retained_keys(name).await?;
        report.expired_versions += expired;
        referenced.extend(referenced_anywhere.iter().cloned());
        // The latest version's Iceberg metadata JSON, every manifest list and manifest its
        // snapshots reference and the data files they name (docs/contract.md section 8);
        // older metadata JSON files are not. A projection that fails keeps the dataset whole.
        referenced.extend(
            self.table_keys(name)
                .await?
                .into_iter()
                .filter_map(|key| ObjectKey::new(key).ok()),
        );
        if let Some(oldest) = self.oldest_snapshot(name).await? {
            referenced.extend(self.keys_from(name, oldest).await?);
        }
        // Re-listed under the lock: the `last_modified` the grace rule sees is current.
        let objects = self
            .store()
            .list_objects(&format!("{DATA_PREFIX}{}/", name.as_str()))
            .await?;
        report.scanned_objects += objects.len() as u64;
        let doomed = self.sort_out(objects, &referenced, options, now, report);
        self.delete_all(doomed, options, report).await;
        Ok(())
    }

    /// Splits `objects` into retained, young and doomed (returned), counting the first two.
    fn sort_out(
        &self,
        objects: Vec<StoredObject>,
        referenced: &HashSet<ObjectKey>,
        options: GcOptions,
        now: DateTime<Utc>,
        report: &mut GcRunResponse,
    ) -> Vec<ObjectKey> {
        let grace_ms = i64::try_from(options.grace_ms).unwrap_or(i64::MAX);
        let mut doomed = Vec::new();
        for object in objects {
            if referenced.contains(&object.key) {
                report.retained_objects += 1;
            } else if now
                .signed_duration_since(object.last_modified)
                .num_milliseconds()
                < grace_ms
                || object.last_modified > now
            {
                // A `last_modified` in the future (clock skew) counts as young too.
                report.skipped_young += 1;
            } else {
                doomed.push(object.key);
            }
        }
        doomed
    }

    /// Deletes `doomed` (or lists them on a dry run), recording the outcome in `report`.
    async fn delete_all(
        &self,
        doomed: Vec<ObjectKey>,
        options: GcOptions,
        report: &mut GcRunResponse,
    ) {
        if options.dry_run {
            report.would_delete.extend(doomed);
            return;
        }
        let outcomes: Vec<_> = futures::stream::iter(doomed)
            .map(|key| async move {
                let outcome = self.store().delete(&key).await;
                (key, outcome)
            })
            .buffer_unordered(DELETE_CONCURRENCY)
            .collect()
            .await;
        for (key, outcome) in outcomes {
            match outcome {
                Ok(existed) => {
                    tracing::debug!(%key, existed, "garbage collected");
                    report.deleted.push(key);
                }
                Err(error) => {
                    let error = format!("delete {key}: {}", error_chain(&error));
                    tracing::warn!(%error, "garbage collection could not delete an object");
                    report.errors.push(error);
                }
            }
        }
    }

    /// Keys referenced by a retained version of any dataset in the index.
    async fn retained_keys_in_index(&self) -> Result<HashSet<ObjectKey>> {
        let mut keys = HashSet::new();
        for name in self.dataset_names() {
            keys.extend(self.retained_keys(&name).await?.0);
        }
        Ok(keys)
    }

    /// Keys (data and rejects objects) of `name`'s retained versions, and how many versions
    /// are past retention. Every version from the oldest retained one on counts as retained
    /// here, so a clock that went backwards keeps more, never less.
    pub(crate) async fn retained_keys(
        &self,
        name: &DatasetName,
    ) -> Result<(HashSet<ObjectKey>, u64)> {
        let Some(latest) = self.latest(name) else {
            return Ok((HashSet::new(), 0));
        };
        let first_live = self.first_live(name);
        if self.retention().keeps_all() {
            return Ok((self.keys_from(name, first_live).await?, first_live - 1));
        }
        self.load_records(name, 1..=latest.version).await?;
        let now = Utc::now();
        let records = self.held_records(name, 1, latest.version);
        let retained = |r: &&std::sync::Arc<crate::record::VersionRecord>| {
            r.version >= first_live
                && self
                    .retention()
                    .is_retained_at(r.version, &r.created_at, latest.version, now)
        };
        let oldest = records
            .iter()
            .find(retained)
            .map_or(latest.version, |r| r.version);
        let expired = records.iter().filter(|r| !retained(r)).count() as u64;
        Ok((self.keys_from(name, oldest).await?, expired))
    }

    /// Keys of every object of `name`'s versions `from` to the latest: version `from`'s
    /// objects and those each later version adds.
    pub(crate) async fn keys_from(
        &self,
        name: &DatasetName,
        from: u64,
    ) -> Result<HashSet<ObjectKey>> {
        let Some(latest) = self.latest(name) else {
            return Ok(HashSet::new());
        };
        let from = from.clamp(1, latest.version);
        let base = self.fetch_version_any(name, from).await?;
        let mut keys: HashSet<ObjectKey> = base
            .objects
            .iter()
            .flat_map(|o| o.keys().cloned())
            .collect();
        if from < latest.version {
            self.load_records(name, from + 1..=latest.version).await?;
            for record in self.held_records(name, from + 1, latest.version) {
                keys.extend(record.added_keys().cloned());
            }
        }
        Ok(keys)
    }
}

/// `datasets/<name>/...` -> `<name>` when it is a valid dataset name and more follows.
fn dataset_of(key: &ObjectKey) -> Option<DatasetName> {
    let rest = key.as_str().strip_prefix(DATA_PREFIX)?;
    let (name, _) = rest.split_once('/')?;
    DatasetName::new(name).ok()
}
