//! The table at one version ([`TableState`]) and the commit of the next one: version N's
//! files from the state at N-1 and N's change (module docs of the crate).

use crate::layout::{
    key_of, legacy_manifest_key, metadata_file_key, stem_list_key, stem_manifest_key, storage_uri,
    version_stem,
};
use crate::manifest::{
    ADDED, DELETED, EXISTING, ManifestFile, added_entry, deleted_entry, entry_file_path,
    entry_snapshot_id, entry_status, mark_deleted, mark_existing, read_entries, read_list,
    write_list, write_manifest,
};
use crate::metadata::{
    Counts, MANIFESTS_CREATED_KEY, NextMetadata, OPERATION_KEY, next_metadata, schemas_with,
    summary, timestamp_ms, to_bytes, totals,
};
use crate::partition::Partitioning;
use crate::spec::{Snapshot, TableMetadata};
use crate::{FileMetrics, IcebergError, Result, ids, merge};
use apache_avro::types::Value;
use lakehouse_api::{DatasetName, Manifest, ObjectRef, Operation};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// The projection's settings. Every replica must use the same ones: they shape the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    /// A new manifest list naming more manifests than this is merged down to at most this
    /// many + 1 (Iceberg's `commit.manifest.min-count-to-merge`; default 100).
    pub manifest_merge_count: usize,
    /// Manifests are merged into manifests of at most about this many bytes, and a manifest
    /// that big is left alone (Iceberg's `commit.manifest.target-size-bytes`; default
    /// 8 MiB): the bound on a merge's own cost.
    pub manifest_target_bytes: u64,
    /// The metadata JSON keeps at most this many snapshots, the latest (docs/contract.md section
    /// 10, `catalogd.iceberg_max_snapshots`; default 1000; at least 1 is kept).
    pub max_snapshots: usize,
    /// The metadata JSON's `metadata-log` keeps at most this many earlier metadata files
    /// (Iceberg's `write.metadata.previous-versions-max`; default 100).
    pub max_metadata_log: usize,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            manifest_merge_count: 100,
            manifest_target_bytes: 8 * 1024 * 1024,
            max_snapshots: 1000,
            max_metadata_log: 100,
        }
    }
}

/// Version N's change, what [`TableState::commit`] projects.
#[derive(Debug, Clone, Copy)]
pub struct VersionChange<'a> {
    /// Version N's record: its name, version, schema, `created_at` (the snapshot's
    /// timestamp), `operation` and `row_count` (the rows of the whole version, checked
    /// against the running total). Its `objects` are not read.
    pub manifest: &'a Manifest,
    /// Data files version N adds, with their footer metrics, in the order to list them.
    pub added: &'a [(ObjectRef, FileMetrics)],
    /// Data files of version N-1 that version N no longer holds.
    pub removed: &'a [ObjectRef],
    /// The oldest version retained when N is committed (retention judged at N's
    /// `created_at`): older snapshots leave the metadata.
    pub oldest_retained: u64,
    /// The commit's tag in the names of its Avro files ([`crate::layout::version_stem`]):
    /// the catalog's digest of version N's record, so two committers racing for N never
    /// write under one name; `None` for names without it.
    pub tag: Option<&'a str>,
}

/// One file of a version, to be written create-only at `key` (under
/// `datasets/<name>/metadata/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFile {
    /// Its storage key.
    pub key: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The Iceberg table of a dataset at one version: its metadata JSON and its current
/// snapshot's manifest list, parsed. What the next commit starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct TableState {
    name: DatasetName,
    base: String,
    metadata: Option<TableMetadata>,
    /// The current snapshot's manifest list, in order.
    list: Vec<ManifestFile>,
}

/// Version N's metadata JSON and the table at N, still to be made: the second stage of
/// [`TableState::commit_staged`], run while the Avro files of the first are written.
#[derive(Debug)]
pub struct PendingMetadata {
    version: u64,
    snapshot: Snapshot,
    schemas: Vec<crate::spec::IcebergSchema>,
    schema: lakehouse_api::Schema,
    partition_fields: Vec<crate::spec::PartitionSpecField>,
    oldest_retained: u64,
    max_snapshots: usize,
    max_metadata_log: usize,
    list: Vec<ManifestFile>,
    /// The table at N-1.
    previous: Arc<TableState>,
}

impl PendingMetadata {
    /// Version N's metadata JSON (`v<N>.metadata.json`, written after every file it names)
    /// and the table at N.
    ///
    /// # Errors
    /// [`IcebergError::Json`] for an encoding bug.
    pub fn finish(self) -> Result<(TableFile, TableState)> {
        let previous = &self.previous;
        let metadata = next_metadata(
            previous.metadata.as_ref(),
            NextMetadata {
                name: &previous.name,
                base: &previous.base,
                snapshot: self.snapshot,
                schemas: self.schemas,
                schema: &self.schema,
                partition_fields: self.partition_fields,
                oldest_retained: self.oldest_retained,
                max_snapshots: self.max_snapshots,
                max_metadata_log: self.max_metadata_log,
            },
        );
        let json = TableFile {
            key: metadata_file_key(&previous.name, self.version),
            bytes: to_bytes(&metadata)?,
        };
        let state = TableState {
            name: previous.name.clone(),
            base: previous.base.clone(),
            metadata: Some(metadata),
            list: self.list,
        };
        Ok((json, state))
    }
}

/// A manifest of the list a commit is making, before merging.
enum Item {
    /// Carried from the previous list unchanged.
    Carried(ManifestFile),
    /// Made by this commit: its entries, its length for the merge plan, and its bytes when
    /// already rendered (with the key they were rendered for).
    Made {
        records: Vec<Value>,
        length: u64,
        rendered: Option<TableFile>,
    },
}

impl Item {
    fn length(&self) -> u64 {
        match self {
            Item::Carried(manifest) => manifest.length,
            Item::Made { length, .. } => *length,
        }
    }
}

/// What a commit needs besides the state: ids and schema of version N.
struct Commit<'c> {
    change: &'c VersionChange<'c>,
    version: u64,
    snapshot_id: i64,
    schemas: Vec<crate::spec::IcebergSchema>,
    schema_id: i32,
    schema_json: String,
    /// The dataset's partition spec (docs/contract.md section 10), the same at every version.
    partitioning: Partitioning,
    /// The stem of the Avro files' keys ([`crate::layout::version_stem`]).
    stem: String,
}

impl TableState {
    /// The table of dataset `name` before version 1, at `<base>/datasets/<name>` (`base`:
    /// the storage's URI of its root, `file:///...`, `s3://<bucket>`, `memory://`).
    pub fn empty(base: &str, name: &DatasetName) -> Self {
        TableState {
            name: name.clone(),
            base: base.to_owned(),
            metadata: None,
            list: Vec::new(),
        }
    }

    /// The table at version N from N's stored metadata JSON and its current snapshot's
    /// manifest list (what a restart or another replica reads: 2 GETs). Reads tables written
    /// before the incremental projection too.
    ///
    /// # Errors
    /// [`IcebergError::Unreadable`] when a file does not parse as what this crate writes, is
    /// another dataset's, or the list is not the current snapshot's.
    pub fn from_files(
        base: &str,
        name: &DatasetName,
        metadata_json: &[u8],
        manifest_list: &[u8],
    ) -> Result<Self> {
        let (metadata, list_key) = parse_metadata(base, name, metadata_json)?;
        let (header, list) = read_list(base, &list_key, manifest_list)?;
        if header.snapshot_id != metadata.current_snapshot_id {
            return Err(IcebergError::Unreadable {
                key: list_key,
                reason: "not the current snapshot's manifest list".into(),
            });
        }
        Ok(TableState {
            name: name.clone(),
            base: base.to_owned(),
            metadata: Some(metadata),
            list,
        })
    }

    /// The key of the current snapshot's manifest list named by a stored metadata JSON of
    /// `name` under `base`: what [`TableState::from_files`] needs with it (a table of the
    /// earlier layout names `snap-<snapshot id>-v<N>.avro`, newer ones `v<N>-list.avro` and
    /// `v<N>-<tag>-list.avro`).
    ///
    /// # Errors
    /// [`IcebergError::Unreadable`] as [`TableState::from_files`].
    pub fn list_key_of(base: &str, name: &DatasetName, metadata_json: &[u8]) -> Result<String> {
        parse_metadata(base, name, metadata_json).map(|(_, key)| key)
    }

    /// The dataset.
    pub fn name(&self) -> &DatasetName {
        &self.name
    }

    /// The version this is the table of; `None` before version 1.
    pub fn version(&self) -> Option<u64> {
        self.metadata
            .as_ref()
            .map(|m| m.last_sequence_number as u64)
    }

    /// The metadata JSON of this version, parsed.
    pub fn metadata(&self) -> Option<&TableMetadata> {
        self.metadata.as_ref()
    }

    /// Key of this version's metadata JSON.
    pub fn metadata_key(&self) -> Option<String> {
        self.version().map(|v| metadata_file_key(&self.name, v))
    }

    /// Key of this version's manifest list (the current snapshot's).
    pub fn manifest_list_key(&self) -> Option<String> {
        let metadata = self.metadata.as_ref()?;
        let current = metadata
            .snapshots
            .iter()
            .find(|s| s.snapshot_id == metadata.current_snapshot_id)?;
        key_of(&self.base, &current.manifest_list).map(str::to_owned)
    }

    /// The oldest version whose snapshot the metadata keeps: garbage collection keeps the
    /// data files of the versions from it to this one (the snapshots name them).
    pub fn oldest_snapshot_version(&self) -> Option<u64> {
        let first = self.metadata.as_ref()?.snapshots.first()?;
        Some(first.sequence_number as u64)
    }

    /// Key of the manifest list of the oldest snapshot the metadata keeps: what
    /// [`TableState::referenced_keys`] needs the bytes of.
    pub fn oldest_list_key(&self) -> Option<String> {
        let first = self.metadata.as_ref()?.snapshots.first()?;
        key_of(&self.base, &first.manifest_list).map(str::to_owned)
    }

    /// Live files, records and bytes at this version (the running totals).
    fn totals(&self) -> Result<[u64; 3]> {
        let Some(metadata) = &self.metadata else {
            return Ok([0; 3]);
        };
        metadata
            .snapshots
            .iter()
            .find(|s| s.snapshot_id == metadata.current_snapshot_id)
            .and_then(|s| totals(s))
            .ok_or_else(|| IcebergError::Unreadable {
                key: metadata_file_key(&self.name, metadata.last_sequence_number as u64),
                reason: "the current snapshot's summary has no totals".into(),
            })
    }

    /// Whether `change` removes every live file (a replace): then no manifest is read.
    fn removes_everything(&self, change: &VersionChange<'_>) -> Result<bool> {
        Ok(!change.removed.is_empty() && change.removed.len() as u64 == self.totals()?[0])
    }

    /// Keys of the manifests [`TableState::commit`] must be given the bytes of: for a
    /// change that removes some but not all live files, every manifest of the current list
    /// holding live entries (any may hold a removed file: no partition filter is applied, as
    /// Iceberg's `MergingSnapshotProducer` reads them without one); otherwise those the merge rewrites.
    /// Empty for an append below the merge threshold and for a replace of everything.
    ///
    /// # Errors
    /// As [`TableState::commit`], for a change that does not follow this version.
    pub fn manifests_to_read(
        &self,
        change: &VersionChange<'_>,
        config: &TableConfig,
    ) -> Result<Vec<String>> {
        let commit = self.prepare(change)?;
        if !change.removed.is_empty() && !self.removes_everything(change)? {
            return Ok(self.carried().map(|m| m.key.clone()).collect());
        }
        let items = self.draft(&commit, &HashMap::new())?;
        let lengths: Vec<u64> = items.iter().map(Item::length).collect();
        let mut keys = Vec::new();
        for bin in merge::bins(
            &lengths,
            config.manifest_merge_count,
            config.manifest_target_bytes,
        ) {
            if bin.len() > 1 {
                keys.extend(items[bin].iter().filter_map(|item| match item {
                    Item::Carried(manifest) => Some(manifest.key.clone()),
                    Item::Made { .. } => None,
                }));
            }
        }
        Ok(keys)
    }

    /// Version N's files in write order (the manifests it creates, its manifest list, then
    /// its metadata JSON last, so an existing metadata JSON means all it names exists) and
    /// the table at N. `manifests` holds the bytes of (at least) the manifests
    /// [`TableState::manifests_to_read`] named, by key. Every byte is a function of this
    /// state, `change`, those manifests (themselves such files) and `config`.
    ///
    /// # Errors
    /// [`IcebergError::InvalidInput`] when `change` is not version N = this version + 1 of
    /// this dataset, removes a file that is not live, or leaves a row count other than its
    /// manifest's; [`IcebergError::MissingManifest`] when a manifest to read is not in
    /// `manifests`; [`IcebergError::Unreadable`] when one does not parse;
    /// [`IcebergError::Avro`] / [`IcebergError::Json`] for encoding bugs.
    pub fn commit(
        &self,
        change: &VersionChange<'_>,
        manifests: &HashMap<String, Vec<u8>>,
        config: &TableConfig,
    ) -> Result<(Vec<TableFile>, TableState)> {
        let (mut files, pending) =
            Arc::new(self.clone()).commit_staged(change, manifests, config)?;
        let (json, state) = pending.finish()?;
        files.push(json);
        Ok((files, state))
    }

    /// [`TableState::commit`] in two stages: version N's Avro files (the manifests it
    /// creates, then its manifest list) now, and what makes its metadata JSON and the table
    /// at N, the larger part of the work, as a [`PendingMetadata`] to finish while those
    /// files are written (docs/contract.md section 10: the work of one commit overlaps).
    /// The bytes are those [`TableState::commit`] makes.
    ///
    /// # Errors
    /// As [`TableState::commit`].
    pub fn commit_staged(
        self: Arc<Self>,
        change: &VersionChange<'_>,
        manifests: &HashMap<String, Vec<u8>>,
        config: &TableConfig,
    ) -> Result<(Vec<TableFile>, PendingMetadata)> {
        let commit = self.prepare(change)?;
        let counts = self.counts(change)?;
        let items = self.draft(&commit, manifests)?;
        let lengths: Vec<u64> = items.iter().map(Item::length).collect();
        let bins = merge::bins(
            &lengths,
            config.manifest_merge_count,
            config.manifest_target_bytes,
        );
        let mut slots: Vec<Option<Item>> = items.into_iter().map(Some).collect();
        let mut files = Vec::new();
        let mut list = Vec::new();
        for bin in bins {
            let mut taken: Vec<Item> = slots[bin].iter_mut().filter_map(Option::take).collect();
            let records = match taken.len() {
                1 => match taken.pop() {
                    Some(Item::Carried(manifest)) => {
                        list.push(manifest);
                        continue;
                    }
                    Some(Item::Made {
                        records, rendered, ..
                    }) => {
                        let key = stem_manifest_key(&commit.stem, files.len());
                        if let Some(file) = rendered.filter(|f| f.key == key) {
                            list.push(self.list_entry(&commit, &file, &records));
                            files.push(file);
                            continue;
                        }
                        records
                    }
                    None => continue,
                },
                _ => self.merged(&commit, taken, manifests)?,
            };
            let key = stem_manifest_key(&commit.stem, files.len());
            let bytes = write_manifest(
                &key,
                &commit.schema_json,
                commit.schema_id,
                &commit.partitioning,
                records.clone(),
            )?;
            let file = TableFile { key, bytes };
            list.push(self.list_entry(&commit, &file, &records));
            files.push(file);
        }
        self.finish(&commit, &counts, config, files, list)
    }

    /// The list entry of a manifest this commit writes.
    fn list_entry(&self, commit: &Commit<'_>, file: &TableFile, records: &[Value]) -> ManifestFile {
        ManifestFile::of_records(
            file.key.clone(),
            file.bytes.len() as u64,
            commit.version as i64,
            commit.snapshot_id,
            records,
            &commit.partitioning,
        )
    }

    /// Checks `change` follows this version and derives N's ids and schema.
    fn prepare<'c>(&self, change: &'c VersionChange<'c>) -> Result<Commit<'c>> {
        let manifest = change.manifest;
        // An empty table takes any first version: a dataset made again under the name of a
        // dropped one continues its version numbers (docs/contract.md section 14).
        let version = self.version().map_or(manifest.version, |v| v + 1);
        if manifest.name != self.name || manifest.version != version || version == 0 {
            return Err(IcebergError::InvalidInput(format!(
                "the table of {} is at version {}; the change is version {} of {}",
                self.name,
                version.saturating_sub(1),
                manifest.version,
                manifest.name
            )));
        }
        let previous = self.metadata.as_ref().map_or(&[][..], |m| &m.schemas[..]);
        let (schemas, schema_id) = schemas_with(previous, &manifest.schema);
        let schema_json =
            serde_json::to_string(&schemas[schema_id as usize]).map_err(IcebergError::Json)?;
        let partitioning = Partitioning::new(manifest.partition_spec.as_ref(), &manifest.schema)?;
        if let Some(spec) = self
            .metadata
            .as_ref()
            .and_then(|m| m.partition_specs.iter().find(|s| s.spec_id == 0))
            .filter(|spec| spec.fields != partitioning.spec_fields())
        {
            // The spec's manifests would be misread under another one: a dataset keeps its
            // first version's spec (docs/contract.md section 10).
            return Err(IcebergError::InvalidInput(format!(
                "version {version} of {} has partition fields {:?}; the table has {:?}",
                self.name,
                partitioning.spec_fields(),
                spec.fields
            )));
        }
        Ok(Commit {
            change,
            version,
            snapshot_id: ids::snapshot_id(&self.name, version),
            schemas,
            schema_id,
            schema_json,
            partitioning,
            stem: version_stem(&self.name, version, change.tag),
        })
    }

    /// The change's counts and the totals after it, checked against the version's rows.
    fn counts(&self, change: &VersionChange<'_>) -> Result<Counts> {
        let added = sum_of(change.added.iter().map(|(o, _)| o));
        let removed = sum_of(change.removed.iter());
        let before = self.totals()?;
        let mut total = [0u64; 3];
        for (slot, ((before, added), removed)) in
            total.iter_mut().zip(before.iter().zip(added).zip(removed))
        {
            *slot = (before + added).checked_sub(removed).ok_or_else(|| {
                IcebergError::InvalidInput(format!(
                    "version {} removes more than version {} holds",
                    change.manifest.version,
                    change.manifest.version - 1
                ))
            })?;
        }
        if total[1] != change.manifest.row_count {
            return Err(IcebergError::InvalidInput(format!(
                "version {} holds {} rows but the change leaves {}",
                change.manifest.version, change.manifest.row_count, total[1]
            )));
        }
        Ok(Counts {
            added,
            removed,
            total,
        })
    }

    /// The previous list's manifests that a new list may carry: those with live entries
    /// (one holding only deleted entries of an earlier snapshot is dropped, as Iceberg's
    /// `ManifestFilterManager` does).
    fn carried(&self) -> impl Iterator<Item = &ManifestFile> {
        self.list.iter().filter(|m| m.is_live())
    }

    /// The new list before merging: the manifest of the added files first, then (a replace
    /// of everything) the manifest of the deleted ones, or the previous live manifests in
    /// their order, those holding a removed file rewritten.
    fn draft(
        &self,
        commit: &Commit<'_>,
        manifests: &HashMap<String, Vec<u8>>,
    ) -> Result<Vec<Item>> {
        let change = commit.change;
        let mut items = Vec::new();
        if !change.added.is_empty() {
            let records = change
                .added
                .iter()
                .map(|(object, metrics)| {
                    let uri = storage_uri(&self.base, object.key.as_str());
                    let partition = commit
                        .partitioning
                        .record(object.key.as_str(), object.partition.as_ref())?;
                    Ok(added_entry(
                        uri,
                        object,
                        partition,
                        metrics,
                        commit.snapshot_id,
                        commit.version as i64,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            items.push(self.made(commit, records)?);
        }
        if change.removed.is_empty() {
            items.extend(self.carried().cloned().map(Item::Carried));
        } else if self.removes_everything(change)? {
            check_distinct(change.removed)?;
            let records = change
                .removed
                .iter()
                .map(|object| {
                    let uri = storage_uri(&self.base, object.key.as_str());
                    let partition = commit
                        .partitioning
                        .record(object.key.as_str(), object.partition.as_ref())?;
                    Ok(deleted_entry(uri, object, partition, commit.snapshot_id))
                })
                .collect::<Result<Vec<_>>>()?;
            let index = items.len();
            items.push(self.made_at(commit, records, index)?);
        } else {
            items.extend(self.rewrite(commit, manifests)?);
        }
        Ok(items)
    }

    /// A manifest this commit made, rendered as the first manifest it creates.
    fn made(&self, commit: &Commit<'_>, records: Vec<Value>) -> Result<Item> {
        self.made_at(commit, records, 0)
    }

    /// A manifest this commit made, rendered as the `index`-th manifest it creates (where it
    /// lands unless merged).
    fn made_at(&self, commit: &Commit<'_>, records: Vec<Value>, index: usize) -> Result<Item> {
        let key = stem_manifest_key(&commit.stem, index);
        let bytes = write_manifest(
            &key,
            &commit.schema_json,
            commit.schema_id,
            &commit.partitioning,
            records.clone(),
        )?;
        Ok(Item::Made {
            length: bytes.len() as u64,
            records,
            rendered: Some(TableFile { key, bytes }),
        })
    }

    /// The previous live manifests, each holding a removed file rewritten: its live entries
    /// copied as EXISTING (snapshot id, sequence numbers and metrics as they were), the
    /// removed ones as DELETED by this snapshot, earlier DELETED entries dropped.
    fn rewrite(
        &self,
        commit: &Commit<'_>,
        manifests: &HashMap<String, Vec<u8>>,
    ) -> Result<Vec<Item>> {
        check_distinct(commit.change.removed)?;
        let mut remaining: HashSet<String> = commit
            .change
            .removed
            .iter()
            .map(|o| storage_uri(&self.base, o.key.as_str()))
            .collect();
        let mut items = Vec::new();
        for manifest in self.carried() {
            let entries = self.entries_of(&manifest.key, manifests)?;
            let holds = entries.iter().any(|e| {
                entry_status(e) != DELETED
                    && entry_file_path(e).is_some_and(|p| remaining.contains(p))
            });
            if !holds {
                items.push(Item::Carried(manifest.clone()));
                continue;
            }
            let mut records = Vec::with_capacity(entries.len());
            for mut entry in entries {
                if entry_status(&entry) == DELETED {
                    continue;
                }
                let removed = entry_file_path(&entry).is_some_and(|p| remaining.remove(p));
                if removed {
                    mark_deleted(&mut entry, commit.snapshot_id);
                } else {
                    mark_existing(&mut entry);
                }
                records.push(entry);
            }
            items.push(Item::Made {
                records,
                length: manifest.length,
                rendered: None,
            });
        }
        if let Some(path) = remaining.iter().min() {
            return Err(IcebergError::InvalidInput(format!(
                "version {} removes {path}, which version {} does not hold",
                commit.version,
                commit.version - 1
            )));
        }
        Ok(items)
    }

    /// The entries of manifest `key` from the bytes given.
    fn entries_of(&self, key: &str, manifests: &HashMap<String, Vec<u8>>) -> Result<Vec<Value>> {
        let bytes = manifests
            .get(key)
            .ok_or_else(|| IcebergError::MissingManifest {
                key: key.to_owned(),
            })?;
        read_entries(key, bytes)
    }

    /// The entries of one merged manifest from a bin's manifests, in list order: entries
    /// this snapshot added or deleted as they are, earlier added ones as EXISTING (their
    /// snapshot ids and sequence numbers kept), earlier deleted ones dropped.
    fn merged(
        &self,
        commit: &Commit<'_>,
        bin: Vec<Item>,
        manifests: &HashMap<String, Vec<u8>>,
    ) -> Result<Vec<Value>> {
        let mut merged = Vec::new();
        for item in bin {
            let records = match item {
                Item::Carried(manifest) => self.entries_of(&manifest.key, manifests)?,
                Item::Made { records, .. } => records,
            };
            for mut entry in records {
                let ours = entry_snapshot_id(&entry) == Some(commit.snapshot_id);
                match entry_status(&entry) {
                    ADDED if !ours => mark_existing(&mut entry),
                    DELETED if !ours => continue,
                    ADDED | DELETED | EXISTING => {}
                    _ => continue,
                }
                merged.push(entry);
            }
        }
        Ok(merged)
    }

    /// The manifest list of the commit, and what makes its metadata JSON.
    fn finish(
        self: Arc<Self>,
        commit: &Commit<'_>,
        counts: &Counts,
        config: &TableConfig,
        mut files: Vec<TableFile>,
        list: Vec<ManifestFile>,
    ) -> Result<(Vec<TableFile>, PendingMetadata)> {
        let change = commit.change;
        let parent = self.metadata.as_ref().map(|m| m.current_snapshot_id);
        let list_key = stem_list_key(&commit.stem);
        let list_bytes = write_list(
            &self.base,
            &list_key,
            commit.snapshot_id,
            parent,
            commit.version as i64,
            &list,
        )?;
        let operation = change
            .manifest
            .operation
            .unwrap_or(if change.removed.is_empty() {
                Operation::Append
            } else {
                Operation::Replace
            });
        let iceberg_operation = match (operation, change.removed.is_empty()) {
            (Operation::Compact, _) => "replace",
            // Copy-on-write by key (docs/contract.md section 11): rows replaced, or removed.
            (Operation::Merge, _) => "overwrite",
            (Operation::Delete, _) => "delete",
            (Operation::Replace | Operation::Append, true) => "append",
            (Operation::Replace | Operation::Append, false) => "overwrite",
            // A tombstone has no table (the catalog never projects one): as Iceberg says it.
            (Operation::Drop, _) => "delete",
        };
        let snapshot = Snapshot {
            snapshot_id: commit.snapshot_id,
            parent_snapshot_id: parent,
            sequence_number: commit.version as i64,
            timestamp_ms: timestamp_ms(&change.manifest.created_at),
            manifest_list: storage_uri(&self.base, &list_key),
            summary: summary(
                iceberg_operation,
                commit.version,
                operation,
                files.len(),
                counts,
            ),
            schema_id: commit.schema_id,
            json: Default::default(),
        };
        files.push(TableFile {
            key: list_key,
            bytes: list_bytes,
        });
        let pending = PendingMetadata {
            version: commit.version,
            snapshot,
            schemas: commit.schemas.clone(),
            schema: change.manifest.schema.clone(),
            partition_fields: commit.partitioning.spec_fields().to_vec(),
            oldest_retained: change.oldest_retained,
            max_snapshots: config.max_snapshots,
            max_metadata_log: config.max_metadata_log,
            list,
            previous: self,
        };
        Ok((files, pending))
    }

    /// What garbage collection must keep of the table at this version (docs/contract.md section 8):
    /// its metadata JSON, the manifest list of each snapshot it keeps, and every manifest
    /// those lists name. `oldest_list` holds the bytes of [`TableState::oldest_list_key`].
    ///
    /// Known without reading every list: a manifest leaves a list only by being rewritten or
    /// merged away and never comes back, so the manifests a kept snapshot's list names are
    /// those of the oldest kept snapshot's list plus those a later kept snapshot created
    /// (`v<k>-m<j>.avro` for j below its summary's `manifests-created`; the earlier layout's
    /// `m0` and, for an `overwrite`, `m1`). The data files the snapshots name are the objects
    /// of the versions from [`TableState::oldest_snapshot_version`] on: the caller's record.
    ///
    /// # Errors
    /// [`IcebergError::Unreadable`] when `oldest_list` is not that snapshot's manifest list.
    pub fn referenced_keys(&self, oldest_list: &[u8]) -> Result<BTreeSet<String>> {
        let mut keys = BTreeSet::new();
        let Some(metadata) = &self.metadata else {
            return Ok(keys);
        };
        keys.insert(metadata_file_key(
            &self.name,
            metadata.last_sequence_number as u64,
        ));
        for snapshot in &metadata.snapshots {
            if let Some(key) = key_of(&self.base, &snapshot.manifest_list) {
                keys.insert(key.to_owned());
            }
        }
        if let Some(oldest) = metadata.snapshots.first() {
            let key = key_of(&self.base, &oldest.manifest_list).unwrap_or_default();
            let (header, list) = read_list(&self.base, key, oldest_list)?;
            if header.snapshot_id != oldest.snapshot_id {
                return Err(IcebergError::Unreadable {
                    key: key.to_owned(),
                    reason: "not the oldest snapshot's manifest list".into(),
                });
            }
            keys.extend(list.into_iter().map(|m| m.key));
        }
        for snapshot in metadata.snapshots.iter().skip(1) {
            keys.extend(self.created_by(snapshot));
        }
        keys.extend(self.list.iter().map(|m| m.key.clone()));
        Ok(keys)
    }

    /// Keys of the manifests `snapshot` created.
    fn created_by(&self, snapshot: &Snapshot) -> Vec<String> {
        let version = snapshot.sequence_number as u64;
        if snapshot.summary.contains_key(OPERATION_KEY) {
            let count: usize = snapshot
                .summary
                .get(MANIFESTS_CREATED_KEY)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            // `<stem>-list.avro` names `<stem>-m<j>.avro`, tagged or not.
            let list = key_of(&self.base, &snapshot.manifest_list).unwrap_or_default();
            let stem = list
                .strip_suffix("-list.avro")
                .map_or_else(|| version_stem(&self.name, version, None), str::to_owned);
            return (0..count).map(|j| stem_manifest_key(&stem, j)).collect();
        }
        let mut keys = vec![legacy_manifest_key(&self.name, version, false)];
        if snapshot.summary.get("operation").map(String::as_str) == Some("overwrite") {
            keys.push(legacy_manifest_key(&self.name, version, true));
        }
        keys
    }
}

/// A stored metadata JSON of `name`, and the key of its current snapshot's manifest list.
fn parse_metadata(
    base: &str,
    name: &DatasetName,
    metadata_json: &[u8],
) -> Result<(TableMetadata, String)> {
    let bad = |key: String, reason: String| IcebergError::Unreadable { key, reason };
    let metadata: TableMetadata = serde_json::from_slice(metadata_json).map_err(|error| {
        bad(
            format!("{}v<N>.metadata.json", crate::metadata_dir(name)),
            error.to_string(),
        )
    })?;
    let key = metadata_file_key(name, metadata.last_sequence_number as u64);
    if metadata.table_uuid != ids::table_uuid(name).to_string() {
        return Err(bad(key, format!("not the table of {name}")));
    }
    let current = metadata
        .snapshots
        .iter()
        .find(|s| s.snapshot_id == metadata.current_snapshot_id)
        .ok_or_else(|| bad(key.clone(), "no current snapshot".into()))?;
    let list = key_of(base, &current.manifest_list)
        .ok_or_else(|| bad(key.clone(), format!("manifest list not under {base}")))?
        .to_owned();
    Ok((metadata, list))
}

/// Files, rows and bytes of `objects`.
fn sum_of<'a>(objects: impl Iterator<Item = &'a ObjectRef>) -> [u64; 3] {
    objects.fold([0u64; 3], |acc, o| {
        [acc[0] + 1, acc[1] + o.row_count, acc[2] + o.size]
    })
}

/// Refuses a removed list naming a file twice (the counts would be wrong).
fn check_distinct(removed: &[ObjectRef]) -> Result<()> {
    let mut seen = HashSet::new();
    match removed.iter().find(|o| !seen.insert(&o.key)) {
        Some(object) => Err(IcebergError::InvalidInput(format!(
            "{} is removed twice",
            object.key
        ))),
        None => Ok(()),
    }
}
